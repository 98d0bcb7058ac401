"""The PaddlePaddle port of GreedyHash, mirroring `torch_impl` file for file."""
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

quiet_paddle_import()
