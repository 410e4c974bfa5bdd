"""Read a run's learned prompts: the vocabulary tokens nearest to each learned context vector (by cosine and by
Euclidean distance), and for a DPC run how the parallel prompt P' moved from the tuned prompt P -- per prompt
tensor, per token, and per feature channel (the share of the change each channel holds).

    python -m tools.interpret --model-dir RUN [--load-epoch E] [--topk 5] [--figure interpret.png]

``--load-epoch 0`` reads a host run's prompts as it initialised them (from ``CTX_INIT``), before any step.
"""
import argparse
import importlib.util
import sys

from tabulate import tabulate

from tools.predict import add_run_arguments, load_from_args
from trainers.inference.interpret import nearest_tokens, prompt_changes
from trainers.run.errors import run_reporting_bad_input


def token_table(nearest):
    rows = [[n.vector, ", ".join(f"{t} {v:.2f}" for t, v in n.by_cosine), ", ".join(f"{t} {v:.2f}" for t, v in
                                                                                n.by_distance)] for n in nearest]
    return tabulate(rows, headers=["context vector", "nearest by cosine (similarity)",
                                   "nearest by distance (Euclidean)"], tablefmt="github", disable_numparse=True)


def change_table(changes):
    rows = [[c.name, f"{c.norm:.4f}", f"{c.relative:.4f}", " ".join(f"{v:.3f}" for v in c.per_token[:16])
             + (" ..." if len(c.per_token) > 16 else ""), f"{c.effective_channels:.1f} of {len(c.channel_share)}",
             f"{c.top_tenth_share:.3f}"] for c in changes]
    return tabulate(rows, headers=["prompt tensor", "norm of P'-P", "relative to P", "per token",
                                   "effective channels", "share of top 10% channels"],
                    tablefmt="github", disable_numparse=True)


def save_figure(changes, path):
    """Per prompt tensor: the change per token, and the channels' shares of the change sorted, against an even
    spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(changes), 2, figsize=(10, 2.8 * len(changes)), squeeze=False)
    for (tokens, channels), change in zip(axes, changes):
        tokens.bar(range(len(change.per_token)), change.per_token)
        tokens.set(title=f"{change.name}: |P'-P| per token", xlabel="token", ylabel="norm")
        shares = change.channel_share.sort(descending=True).values.numpy()
        channels.plot(shares, label="P'-P")
        channels.axhline(1 / len(shares), color="grey", linestyle="--", label="even spread")
        channels.set(title=f"share of the change per channel ({change.effective_channels:.0f} effective)",
                     xlabel="channel, by share", ylabel="share")
        channels.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.interpret", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--topk", type=int, default=5, help="tokens listed per context vector (default 5)")
    parser.add_argument("--figure", default="", help="for a DPC run, draw P'-P per token and per channel here (.png)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    classifier = load_from_args(args)
    sets = classifier.prompt_sets()
    if not sets:
        raise ValueError(f"{args.model_dir} is a zero-shot CLIP run: it learned no prompt")
    run = classifier.run
    epoch = "as initialised (epoch 0)" if run.checkpoint is None else f"epoch {run.epoch}"
    table = classifier.clip_model.token_embedding.weight
    for label, tensors in sets.items():
        nearest = nearest_tokens(tensors, table, args.topk)
        title = {"learned": f"{run.host} prompts", "P": "P (the host's tuned prompt)", "P'": "P' (DPC's prompt)"}[label]
        when = "" if label == "P" else f", {epoch}"  # P is the stage-1 run's, as DPC started from it
        print(f"\n{title}{when}: nearest tokens of each context vector")
        print(token_table(nearest) if nearest else "(no vector as wide as a token embedding)")
    if run.is_dpc:
        changes = prompt_changes(sets["P"], sets["P'"])
        print(f"\nHow P' moved from P ({len(changes)} prompt tensors):")
        print(change_table(changes))
        if args.figure:
            if importlib.util.find_spec("matplotlib") is None:
                raise ValueError("--figure needs matplotlib: pip install matplotlib")
            save_figure(changes, args.figure)
            print(f"Figure: {args.figure}")
    elif args.figure:
        print("Note: --figure draws P'-P, which only a DPC run has")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_bad_input(main, program="python -m tools.interpret"))
