"""A pair made from two model factories and nothing else: the models come from the factories, the key map is
inferred from the two module trees (alignment.pairs.inferred_layout), and every other definition is the
base's (alignment.pairs.base: cross-entropy, the project's SGD, CIFAR-10 images, BatchNorm drawn in the
seeded set).

On the command line the pair is a spec, which every process of a run resolves once at its entry:

  torch=MODULE:FACTORY,paddle=MODULE:FACTORY[,TORCH_KEY=PADDLE_KEY...]

(`python -m alignment --torch MODULE:FACTORY --paddle MODULE:FACTORY [--key-map TORCH_KEY=PADDLE_KEY]`
writes it). A process that cannot import torch (a Paddle side in its own environment, --paddle-python) reads
the layout its run's torch interpreter inferred (inputs/layout.json, `python -m alignment.pairs.factories`).
"""
import importlib
import os

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.content_cache import arrays_digest
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input

from ..paths import inputs_dir
from .base import ModelPair
from .inferred_layout import layout_as_json, layout_from_json, layout_of_models

SPEC_HELP = "torch=MODULE:FACTORY,paddle=MODULE:FACTORY[,TORCH_KEY=PADDLE_KEY...]"


def is_factory_spec(name):
    return name.startswith("torch=")


def factory_spec(torch_factory, paddle_factory, key_map=None):
    """The spec of --torch, --paddle and --key-map ("TORCH_KEY=PADDLE_KEY,...")."""
    return ",".join([f"torch={torch_factory}", f"paddle={paddle_factory}", *([key_map] if key_map else [])])


def load_factory(text, framework):
    """The callable MODULE:FACTORY names, or a one-line error."""
    module, _, attribute = text.partition(":")
    if not module or not attribute:
        raise UserInputError(f"--{framework} {text}: give MODULE:FACTORY (such as torchvision.models:resnet18)")
    try:
        factory = getattr(importlib.import_module(module), attribute, None)
    except ImportError as error:
        raise UserInputError(f"--{framework} {text}: cannot import {module} ({error})") from None
    if not callable(factory):
        raise UserInputError(f"--{framework} {text}: {module} has no callable {attribute}")
    return factory


def layout_path(workdir):
    return os.path.join(inputs_dir(workdir), "layout.json")


class FactoryPair(ModelPair):
    """Two factories, each returning a model of its framework: the untrained models whose weights the seeded
    set draws (torch's, copied to Paddle through the inferred layout)."""

    def __init__(self, torch_factory, paddle_factory, name="model", key_map=None, workdir=None):
        self.factories = {"torch": torch_factory, "paddle": paddle_factory}
        self.NAME = name
        self.given_key_map = dict(key_map or {})
        self.workdir = workdir
        self._layout = None

    @classmethod
    def from_spec(cls, spec, workdir=None):
        parts = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
        if set(parts) < {"torch", "paddle"} or any("=" not in part for part in spec.split(",")):
            raise UserInputError(f"--model {spec}: give {SPEC_HELP}")
        torch_text, paddle_text = parts.pop("torch"), parts.pop("paddle")
        factories = {}
        for framework, text in (("torch", torch_text), ("paddle", paddle_text)):
            factories[framework] = (lambda text=text, framework=framework: load_factory(text, framework)())
        return cls(factories["torch"], factories["paddle"], torch_text.rpartition(":")[2], parts, workdir)

    def build(self, framework):
        return self.factories[framework]()

    def layout(self, state=None, framework=None):
        if self._layout is None:
            self._layout = self._inferred_or_kept()
        return self._layout

    def weights_made_from(self, seed):
        """The models are the user's, not this project's code: the seeded state the torch factory builds (of
        the model alignment.align was given), and the layout its conversion follows."""
        return {"seeded_state": arrays_digest(self.seeded_state(seed)), "layout": layout_as_json(self.layout())}

    def _inferred_or_kept(self):
        try:
            import paddle  # noqa: F401 (both frameworks: the layout is inferred here)
            import torch  # noqa: F401
        except ImportError:
            path = self.workdir and layout_path(self.workdir)
            if not path or not os.path.exists(path):
                raise UserInputError("the key map is inferred with both frameworks: no layout.json of this run in"
                                     f" {path or 'no --workdir'} (python -m alignment writes it)") from None
            with open(path, encoding="utf-8") as handle:
                return layout_from_json(handle.read())
        return layout_of_models(self.build("torch"), self.build("paddle"), self.NAME, self.given_key_map)


@exits_cleanly_on_bad_input
def main(argv=None):
    """Write the inferred layout of a spec into a run's inputs/, for a process that cannot infer it."""
    parser = OneLineArgumentParser(prog="python -m alignment.pairs.factories", description=main.__doc__)
    parser.add_argument("--model", required=True, help=SPEC_HELP)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)
    write_text(layout_path(args.workdir), layout_as_json(FactoryPair.from_spec(args.model).layout()))


if __name__ == "__main__":
    main()
