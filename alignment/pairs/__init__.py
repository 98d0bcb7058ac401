"""Model pairs: a torch model and its Paddle port, as the alignment suite sees them (the adapter).

The steps, the checker and the report are written once; everything they need to know about one model
pair comes from its adapter, a module of this package (one file per pair; a pair that ships its own
side modules, as GreedyHash does, keeps them beside it). `python -m alignment --model NAME` takes a
pair of this package by name, or any importable module (or object in one) with the same attributes by its
dotted path (`--model tests.test_model_pairs:TinyPair`): a test defines a pair in its own file.

What an adapter defines (alignment/pairs/resnet18.py is the smallest complete one; the walk-through is
docs/adding-a-model-pair.md):

  NAME              its name in --model and in the report
  STEPS             the suite's steps it runs (alignment.steps.STEPS), in order
  OUTPUTS           the names of the model's outputs, in the order it returns them
  WEIGHT_SETS       the weight sets a run checks it at (alignment.weight_sets), the first the default
  DEFAULT_SIZES     the image sizes of the forward, loss and backward steps
  side(framework)   the side module the steps call for "torch" or "paddle" (alignment.sides.generic_side
                    makes one from the definitions below; GreedyHash has its own)
  loss_terms(side, outputs, labels) -> {key: scalar tensor}, "loss_total" first: the objective
  inject_randomness(side, model, seed)   make training mode deterministic on both sides (dropout masks)
  optimizer: OPTIMIZER ({lr, decay_every, momentum, weight_decay}), EPOCHS, learning_rate_at(epoch)
  train_values(side, context)            the train step's values
  make_weight_set(weight_set, seed, workdir, torch_file, source)  (torch process) one weight set, .pth
  layout()          the converter's Layout (greedyhash_common.state_dicts.layout): key map, transposed
                    weights, torch shapes, dropped keys
  CODE_OUTPUTS      {sign-code output: the continuous output that excuses a flip near zero}, or {}
  BACKWARD_MODES    ("eval",) or ("eval", "train"); backward_extras(side, outputs, terms): its own keys
  INVARIANTS        {step: ((key, key), ...)}: keys equal inside each side's own file
  TOLERANCES        {dtype: {step: [(key pattern, Tolerance)]}}, read before the suite's table
"""
import importlib

from greedyhash_common.infra.errors import UserInputError

DEFAULT_PAIR = "greedyhash"
PAIRS = ("greedyhash", "resnet18", "resnet18-torch-bn", "resnet50")
_MODULE_OF = {"greedyhash": "alignment.pairs.greedyhash", "resnet18": "alignment.pairs.resnet18",
              "resnet18-torch-bn": "alignment.pairs.resnet18_torch_bn", "resnet50": "alignment.pairs.resnet50"}


def pair_named(name=DEFAULT_PAIR):
    """The adapter of `name`: a pair of this package, a module by its dotted path, or an object in a
    module ("tests.test_model_pairs:TinyPair")."""
    module, _, attribute = _MODULE_OF.get(name, name).partition(":")
    if module not in _MODULE_OF.values() and "." not in module:
        raise UserInputError(f"--model {name}: choose from {', '.join(PAIRS)}, or give an adapter module's"
                             " dotted path")
    try:
        pair = importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise UserInputError(f"--model {name}: no such adapter module ({error})") from None
    if attribute:
        if not hasattr(pair, attribute):
            raise UserInputError(f"--model {name}: {module} has no {attribute}")
        pair = getattr(pair, attribute)
    missing = [attribute for attribute in ("NAME", "STEPS", "OUTPUTS", "side", "loss_terms", "layout")
               if not hasattr(pair, attribute)]
    if missing:
        raise UserInputError(f"--model {name}: {module} is not a model-pair adapter (no {', '.join(missing)})")
    return pair
