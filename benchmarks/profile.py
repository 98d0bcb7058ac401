"""Where the training step's time goes: each framework's own profiler on the project's train_step.

  python -m benchmarks.profile torch|paddle [--mkl vendor|avx2] [--output logs/profile_paddle_avx2.txt]
  make profile          (both frameworks, both MKL settings, into logs/profile_*.txt)

The step and its inputs are the benchmark's (benchmarks.worker: batch 32, 224 px, float32, seeded model,
the same thread count on both sides). After --warm-up untimed steps, --steps steps run under
torch.profiler or paddle.profiler (CPU), and the operator table, sorted by total CPU time, is written
to --output (atomically) and printed. `--mkl` chooses MKL's code path on an AMD CPU
(greedyhash_common.infra.cpu_math): `vendor` is MKL's own choice, `avx2` the project's default.
"""
import argparse
import contextlib
import io

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

from .worker import SIDES, add_measurement_options, training_step

TABLE_ROWS = 20


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=tuple(SIDES))
    parser.add_argument("--mkl", choices=("vendor", "avx2"), default="avx2")
    parser.add_argument("--steps", type=int, default=3, help="profiled training steps")
    parser.add_argument("--output", help="text file for the operator table")
    add_measurement_options(parser)
    return parser


def torch_table(step, steps):
    import torch.profiler

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    return profiler.key_averages().table(sort_by="cpu_time_total", row_limit=TABLE_ROWS)


def paddle_table(step, steps):
    import paddle.profiler

    profiler = paddle.profiler.Profiler(targets=[paddle.profiler.ProfilerTarget.CPU], timer_only=False)
    profiler.start()
    for _ in range(steps):
        step()
        profiler.step()
    profiler.stop()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # Profiler.summary prints its tables, it returns nothing
        profiler.summary(sorted_by=paddle.profiler.SortedKeys.CPUTotal, op_detail=False,
                         views=[paddle.profiler.SummaryView.OverView, paddle.profiler.SummaryView.OperatorView])
    return printed.getvalue()


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.framework == "paddle":
        quiet_paddle_import()
    side = SIDES[args.framework](args.threads, args.device, mkl_avx2_on_amd=args.mkl == "avx2")
    step = training_step(side, "dynamic", args)
    for _ in range(args.warm_up):
        step()
    table = (torch_table if args.framework == "torch" else paddle_table)(step, args.steps)
    heading = (f"{args.framework} training step, batch {args.batch_size}, {args.image_size} px, {args.threads} "
               f"threads, MKL {args.mkl}, {args.steps} steps profiled after {args.warm_up} warm-up steps\n"
               f"environment: {side.describe()}\n\n")
    print(heading + table)
    if args.output:
        write_text(args.output, heading + table + "\n")


if __name__ == "__main__":
    main()
