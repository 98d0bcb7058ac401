"""Model pairs: a torch model and its Paddle port, as the alignment suite sees them (the adapter).

The steps, the checker and the report are written once; everything they need to know about one model
pair comes from its adapter, a module of this package (one file per pair; a pair that ships its own
side modules, as GreedyHash does, keeps them beside it). `python -m alignment --model NAME` takes a
pair of this package by name, or any importable module (or object in one) with the same attributes by its
dotted path (`--model tests.test_model_pairs:TinyPair`): a test defines a pair in its own file.

What an adapter defines (alignment/pairs/resnet18.py is a complete one; the walk-through is
docs/adding-a-model-pair.md):

  NAME, STEPS       its name in --model and the report; the steps it runs: the suite's (alignment.steps.STEPS)
                    and its own, OWN_STEPS {name: step module} (optional)
  OUTPUTS           the names of the model's outputs, in the order it returns them
  WEIGHT_SETS       the weight sets a run checks it at (alignment.weight_sets), the first the default;
                    WEIGHTS_MADE_ON {weight set: image size of the batch it is made from} (optional)
  DEFAULT_SIZES, SMALLEST_IMAGE_SIZE     the image sizes of the forward, loss and backward steps
  input_batch(data, count, sizes) -> ({size: NCHW float64 images}, int64 labels), BATCH_SIZE: its data and
                    batch size (optional: alignment.inputs.cifar10_batch, and 4)
  side(framework)   the side the steps call for "torch" or "paddle": alignment.sides.generic_side makes one
                    from build(framework), loss(framework), optimizer(framework) and layout();
                    GreedyHash has its own
  loss_terms(side, outputs, labels) -> {key: scalar tensor}, "loss_total" first: the objective
  inject_randomness(side, model, seed)   make training mode the same on both sides (dropout masks); optional
  OPTIMIZER ({lr, decay_every, momentum, weight_decay}), EPOCHS, learning_rate_at(epoch): the schedule;
                    train_learning_rate(weight_set): the train step's rate, optional
  train_values(side, context)            the train step's values; optional (alignment.steps.train)
  make_weight_set(bit, seed, workdir, weight_set, source)  (torch process) one weight set in both layouts
  layout(state=None, framework=None), key_map()   the converter's Layout (greedyhash_common.state_dicts.layout):
                    key map, transposed weights, torch shapes, dropped keys and their values
  optional, the pair's own checks: CODE_OUTPUTS and CODE_LAYER (sign codes compared exactly), BACKWARD_MODES
                    (default ("eval",)), backward_extras(side, outputs, terms), INVARIANTS {step: key pairs},
                    TOLERANCES {dtype: {step: [(key pattern, Tolerance)]}} (read before the suite's table),
                    FLOAT64_ONLY_TRAIN_WEIGHT_SETS, mutation_score(workdir) -> (line, report file) or None
                    (the report's mutation score section; a pair without it has none)
"""
import importlib

from greedyhash_common.infra.errors import UserInputError, one_line_reason

DEFAULT_PAIR = "greedyhash"
_MODULE_OF = {"greedyhash": "alignment.pairs.greedyhash", "resnet18": "alignment.pairs.resnet18",
              "resnet18-torch-bn": "alignment.pairs.resnet18_torch_bn", "resnet50": "alignment.pairs.resnet50"}
PAIRS = tuple(_MODULE_OF)


# What every adapter defines (the rest is optional), and which of those must name at least one thing
REQUIRED = ("NAME", "STEPS", "OUTPUTS", "WEIGHT_SETS", "DEFAULT_SIZES", "side", "loss_terms", "layout")
NOT_EMPTY = ("STEPS", "OUTPUTS", "WEIGHT_SETS", "DEFAULT_SIZES")


def pair_named(name=DEFAULT_PAIR):
    """The adapter of `name`: a pair of this package, a module by its dotted path, or an object in a
    module ("tests.test_model_pairs:TinyPair")."""
    module, _, attribute = _MODULE_OF.get(name, name).partition(":")
    if module not in _MODULE_OF.values() and "." not in module:
        raise UserInputError(f"--model {name}: choose from {', '.join(PAIRS)}, or give an adapter module's"
                             " dotted path")
    pair = _imported_adapter(name, module)
    if attribute:
        if not hasattr(pair, attribute):
            raise UserInputError(f"--model {name}: {module} has no {attribute}")
        pair = getattr(pair, attribute)
    missing = [attribute for attribute in REQUIRED if not hasattr(pair, attribute)]
    if missing:
        raise UserInputError(f"--model {name}: {module} is not a model-pair adapter (no {', '.join(missing)})")
    empty = [attribute for attribute in NOT_EMPTY if not getattr(pair, attribute)]
    if empty:
        raise UserInputError(f"--model {name}: the adapter's {', '.join(empty)} name(s) nothing")
    return pair


def _imported_adapter(name, module):
    """The adapter's module; its own failure to import (a syntax error, an exception, a module it needs that
    is not installed) is one line that says which, not "no such adapter"."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and (module == error.name or module.startswith(f"{error.name}.")):
            raise UserInputError(f"--model {name}: no such adapter module ({error})") from None
        raise UserInputError(f"--model {name}: the adapter {module} needs a module that is not installed "
                             f"({error})") from None
    except SyntaxError as error:
        raise UserInputError(f"--model {name}: the adapter does not compile: {error.filename}, line {error.lineno}: "
                             f"{error.msg}") from None
    except (Exception, SystemExit) as error:  # whatever the adapter's own code raises (or exits) while imported
        raise UserInputError(f"--model {name}: importing the adapter {module} failed: "
                             f"{one_line_reason(error)}") from None
