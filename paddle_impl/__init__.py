"""The PaddlePaddle port of GreedyHash, mirroring `torch_impl` file for file."""
from greedyhash_common.infra.runtime_settings import import_paddle_quietly

import_paddle_quietly()
