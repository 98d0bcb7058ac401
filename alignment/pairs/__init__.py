"""Model pairs: a torch model and its Paddle port, as the alignment suite sees them.

The steps, the checker and the report are written once; everything they need to know about one model
pair comes from its ModelPair (alignment/pairs/base.py declares every attribute and its default once; a
pair subclasses it and overrides what is its own). `python -m alignment --model NAME` takes a pair of this
package by name, any ModelPair subclass by its dotted path (`--model tests.test_model_pairs:TinyPair`: a test
defines a pair in its own file), or two model factories with no pair written at all
(`--torch MODULE:FACTORY --paddle MODULE:FACTORY`: alignment.pairs.factories). Each process resolves the
pair once, at its entry (`pair_named`), and passes the object on.

  greedyhash         this project's GreedyHash (alignment/pairs/greedyhash/): its own sides, data, steps,
                     metric, inference, mutants and curves
  resnet18           torchvision's and paddle.vision's ResNet-18 (10 classes), as the libraries ship
  resnet18-torch-bn  the same, the Paddle BatchNorm updating its running statistics as torch does
  resnet50           the same for ResNet-50: the cost figures' larger pair
"""
import importlib
import inspect

from greedyhash_common.infra.errors import UserInputError, one_line_reason

from .base import ModelPair

DEFAULT_PAIR = "greedyhash"
_CLASS_OF = {"greedyhash": "alignment.pairs.greedyhash:GreedyHashPair",
             "resnet18": "alignment.pairs.resnet18:ResNet18",
             "resnet18-torch-bn": "alignment.pairs.resnet18_torch_bn:ResNet18TorchBN",
             "resnet50": "alignment.pairs.resnet50:ResNet50"}
PAIRS = tuple(_CLASS_OF)


# What a pair must name at least one of
NOT_EMPTY = ("STEPS", "OUTPUTS", "WEIGHT_SETS", "DEFAULT_SIZES")


def pair_named(name, workdir=None):
    """The ModelPair of `name`: a pair of this package, a ModelPair subclass by its dotted path
    ("tests.test_model_pairs:TinyPair"), or two factories (alignment.pairs.factories.SPEC_HELP); `workdir`:
    where a pair whose key map is inferred keeps it for the processes of a run."""
    from .factories import FactoryPair, is_factory_spec

    if is_factory_spec(name):
        return FactoryPair.from_spec(name, workdir)
    module, _, attribute = _CLASS_OF.get(name, name).partition(":")
    if name not in _CLASS_OF and ("." not in module or not attribute):
        raise UserInputError(f"--model {name}: choose from {', '.join(PAIRS)}, or give a ModelPair subclass as"
                             " module:Class, or --torch and --paddle model factories")
    pair = getattr(_imported_adapter(name, module), attribute, None)
    if not (isinstance(pair, type) and issubclass(pair, ModelPair)):
        raise UserInputError(f"--model {name}: {module} has no ModelPair subclass {attribute}")
    if inspect.isabstract(pair):
        raise UserInputError(f"--model {name}: the adapter's {attribute} does not define "
                             f"{', '.join(sorted(pair.__abstractmethods__))} (alignment.pairs.base)")
    pair = pair()
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
