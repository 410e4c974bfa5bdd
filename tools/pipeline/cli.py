"""One command per benchmark: a host, then DPC over it, on datasets x seeds, ending with the table.

    python -m tools.pipeline --host CoOp --root DATA --out output              # the paper's CoOp table
    python -m tools.pipeline --host CoOp --root DATA --out output --dry-run    # print the train.py commands
    python -m tools.pipeline --host MaPLe --mode cross-dataset --root DATA --out output
    python -m tools.pipeline --host CoOp --datasets caltech101 path/to/my_data.yaml --seeds 1 \\
        --host-config cpu_tiny --dpc-config cpu_tiny --opts MODEL.BACKBONE.NAME tiny.pt
    python -m tools.pipeline --host CoOp --root DATA --out output --executor local --jobs-per-gpu 2
    python -m tools.pipeline --host CoOp --root DATA --out output --executor slurm --slurm-partition gpu
    python -m tools.pipeline --host CoOp --root DATA --out output --sweep TRAINER.DPC.WEIGHT_NEW=0,0.1,0.2
    python -m tools.pipeline --host CoOp --root DATA --out output --variants ablation --dry-run

Modes: base2new (default; stages host-train, host-test, dpc-train, dpc-test per dataset and seed),
cross-dataset and dg (train on --source, all classes; evaluate on every target dataset), few-shot
(host-train and dpc-train on all classes, shots 1 2 4 8 16). A host that distils from a teacher (PromptKD)
gets a teacher-train stage first: one teacher run per dataset, shared by every seed. Output layout: see
tools/output_folders.py.

Sweeps and variants vary DPC's stage (the host runs are shared): --sweep KEY=V1,V2 (repeatable: the grid of
the keys) and --variants ablation|weight-sweeps (the paper's rows and sweeps, tools/paper_experiments.py) plan each
variant's runs in <cfg>@KEY=VALUE... folders. A key the DPC trainer declares evaluation-only (TRAINER.DPC.WEIGHT_NEW;
WEIGHT_BASE in mixed mode) adds evaluations of one trained run (--eval-only --model-dir), never a training.

Finished runs (a valid results.json) are skipped; an unfinished run is run again in its directory, where
train.py resumes from the latest checkpoint; a failed run is reported with its log, the runs that need it
are skipped, and everything else goes on. Runs execute one after another (--executor serial), several at a
time on this machine's GPUs or CPU (local), or as Slurm job arrays (slurm), under the same rules. Exit
status: 0 when every selected run finished, 1 otherwise, 2 for bad arguments.
"""
import argparse
import contextlib
import os
import signal
import sys
import threading

from tools import output_folders as layout
from tools.pipeline import presets, variants
from tools.pipeline.configs import registered_trainers
from tools.pipeline.cost import DEFAULT_TFLOPS, cost_lines, estimate
from tools.pipeline.executor_options import add_executor_arguments, executor_from_args
from tools.pipeline.plan import STAGES, Spec, build_plan
from tools.pipeline.runner import BLOCKED, FAILED, INTERRUPTED, dry_run_lines, execute, summarize
from tools.tables.arithmetic import TableError
from trainers.run.config_keys import ConfigError
from trainers.run.lock import run_lock


def _pairs(values, flag):
    values = values or []
    if len(values) % 2:
        raise ConfigError(f"{flag} takes KEY VALUE pairs; got an odd number of items: {values}")
    return values


def _per_dataset(items):
    mapping = {}
    for item in items or []:
        dataset, sep, config = item.partition("=")
        if not sep or not dataset or not config:
            raise ConfigError("--host-config-for takes DATASET=CONFIG (e.g. imagenet=vit_b16_ep50_ctxv1); "
                              f"got {item!r}")
        mapping[dataset] = config
    return mapping


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="registered host trainer (CoOp, MaPLe, PromptSRC, ...)")
    parser.add_argument("--mode", choices=layout.MODES, default=layout.BASE2NEW)
    parser.add_argument("--root", default=os.environ.get("DATA", ""),
                        help="dataset root (DATASET.ROOT); default: $DATA")
    parser.add_argument("--out", default=os.environ.get("OUTPUT", "output"),
                        help="output root; default: $OUTPUT, else ./output")
    parser.add_argument("--datasets", nargs="+",
                        help="dataset config names (configs/datasets/<name>.yaml) or yaml paths; for cross-dataset "
                             "and dg, the target datasets. Default: the benchmark's list")
    parser.add_argument("--source", default=presets.XD_SOURCE, help="cross-dataset / dg training dataset")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(presets.DEFAULT_SEEDS))
    parser.add_argument("--shots", nargs="+", type=int, help="default 16 (few-shot: 1 2 4 8 16)")
    parser.add_argument("--host-config", default="", help="host config name or path, for every dataset "
                        "(default: the host's preset, e.g. CoOp vit_b16_ctxv1 and vit_b16_ep50_ctxv1 on ImageNet)")
    parser.add_argument("--host-config-for", nargs="+", metavar="DATASET=CONFIG", help="per-dataset host config")
    parser.add_argument("--dpc-config", default="",
                        help="DPC config name (in configs/trainers/DPC/) or path; "
                             "default vit_b16_ep20_batch4 (or <host lower>_vit_b16_ep20_batch4 where one exists)")
    parser.add_argument("--teacher-config", default="",
                        help="config name or path of the teacher runs of a host that needs one (PromptKD); default: "
                             "the host's (PromptSRC vit_l14_c2_ep20_batch8_4+4ctx)")
    parser.add_argument("--opts", nargs="+", action="extend", metavar="KEY VALUE", help="options for every run")
    parser.add_argument("--host-opts", nargs="+", action="extend", metavar="KEY VALUE", help="host runs only")
    parser.add_argument("--dpc-opts", nargs="+", action="extend", metavar="KEY VALUE", help="DPC runs only")
    parser.add_argument("--teacher-opts", nargs="+", action="extend", metavar="KEY VALUE", help="teacher runs only")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="one DPC variant per value (repeatable: the grid over several keys)")
    parser.add_argument("--variants", nargs="+", default=[], choices=(variants.ABLATION, variants.WEIGHT_SWEEPS_NAME),
                        help="the paper's ablation rows or its two weight sweeps, as DPC variants")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="run only these stages (the runs they need must have finished)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the train.py commands (with --executor slurm: the job arrays and their #SBATCH "
                             "lines) and exit")
    parser.add_argument("--gpu-tflops", type=float, default=DEFAULT_TFLOPS,
                        help="the sustained throughput the dry run's GPU-hours assume (TFLOP/s; default "
                             f"{DEFAULT_TFLOPS:g}, an assumption: tools/pipeline/cost.py)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-table", action="store_true", help="do not print the table at the end")
    parser.add_argument("--no-feature-cache", action="store_true",
                        help=f"no test-feature cache in <out>/{layout.FEATURE_CACHE_DIR} (it is exact; on by default)")
    add_executor_arguments(parser)
    return parser


def spec_from_args(args):
    if not args.root:
        raise ConfigError("No dataset root: pass --root DATA or set the DATA environment variable")
    return Spec(
        host=args.host, root=args.root, out=args.out, mode=args.mode, datasets=args.datasets, seeds=args.seeds,
        shots=args.shots, source=args.source, host_config=args.host_config,
        host_config_for=_per_dataset(args.host_config_for), dpc_config=args.dpc_config,
        opts=([] if args.no_feature_cache else layout.feature_cache_opts(args.out)) + _pairs(args.opts, "--opts"),
        host_opts=_pairs(args.host_opts, "--host-opts"),
        dpc_opts=_pairs(args.dpc_opts, "--dpc-opts"), stages=tuple(args.stages),
        teacher_config=args.teacher_config, teacher_opts=_pairs(args.teacher_opts, "--teacher-opts"),
        variants=variants.plan_variants(args.variants, args.sweep),
    )


def check_trainers(runs):
    """Every trainer a selected run needs must be registered before hours of training start."""
    needed = {run.trainer for run in runs}
    missing = sorted(needed - registered_trainers())
    if missing:
        raise ConfigError(f"Trainer(s) {', '.join(missing)} not registered in trainers/ "
                          f"(registered: {', '.join(sorted(registered_trainers()))})")


def variant_tables(spec):
    """What the tables tool shows of the plan's variants: ``[{"ablation": True}]`` for the ablation's rows, one
    ``{"sweep": KEY}`` per swept key otherwise, [] for plain DPC."""
    keys = sorted({key for variant in spec.variants for key in variant})
    if not keys:
        return []
    if spec.variants == variants.named_variants(variants.ABLATION):
        return [{"ablation": True}]
    return [{"sweep": key} for key in keys]


def print_table(spec, runs):
    """The table of the runs just planned (their host, configs, datasets, shots and seeds): the ablation's or a
    table per swept key when the plan has variants."""
    from tools.tables.cli import make_report
    from tools.tables.render import to_markdown

    cfgs = sorted({run.config_file for run in runs})
    names = [os.path.splitext(os.path.basename(c))[0] for c in cfgs]
    shots = sorted({run.shots for run in runs})
    datasets = sorted({run.dataset for run in runs})  # this invocation's rows only
    for table in variant_tables(spec) or [{}]:
        try:
            report = make_report(spec.out, spec.mode, host=spec.host, cfgs=names, shots=shots, seeds=spec.seeds,
                                 datasets=datasets, **table)
        except TableError as err:
            print(f"No table: {err}")
            continue
        print(to_markdown(report))


class PipelineStopped(KeyboardInterrupt):
    """A stop signal: unwinds as Ctrl-C does (the executor stops the runs), then one line says which signal."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stopped_by_signals(signums=(signal.SIGTERM, signal.SIGHUP)):
    """SIGTERM (``kill``, ``scancel`` of the pipeline's own job) and SIGHUP raise ``PipelineStopped``; a signal
    that whoever started the pipeline ignores stays ignored."""
    def stop(signum, frame):
        raise PipelineStopped(signum)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.getsignal(s) for s in signums}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = spec_from_args(args)
        runs = build_plan(spec, warn=lambda msg: print(msg, file=sys.stderr))
        executor = executor_from_args(args)
        if args.dry_run:
            # the counts come first, the cost last: where a long list leaves the terminal
            print("\n".join(dry_run_lines(runs, executor) + cost_lines(estimate(runs), args.gpu_tflops)))
            return 0
        check_trainers(runs)
        executor.check()
    except (ConfigError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"error: {message}\n")
    try:
        with run_lock(args.out), stopped_by_signals():  # one pipeline per output root: a second would move aside
            outcomes = execute(runs, executor, progress=not args.no_progress)  # runs the first one writes
    except PipelineStopped as stop:  # its runs were stopped first, each keeping its last checkpoint
        print(f"\npipeline: stopped by {signal.Signals(stop.signum).name}; {INTERRUPTED[len('Interrupted: '):]}",
              file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return 130
    print(summarize(outcomes))
    if not args.no_table:
        print_table(spec, runs)
    return 1 if any(o.status in (FAILED, BLOCKED) for o in outcomes) else 0

