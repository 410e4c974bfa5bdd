"""Valid ``results.json`` records for tests that stand in for finished runs (tables, pipeline plans)."""
from tools.pipeline.run_state import expected_identity
from trainers.run.record import load_record, new_run_id, write_results


def finished_record(accuracy, dataset="ImageFolder", seed=1, subsample="base", **fields):
    """A record with every field the pipeline and the tables read; ``fields`` override or add."""
    record = {"trainer": "CoOp", "dataset": dataset, "subsample_classes": subsample, "num_shots": 16, "seed": seed,
              "split": "test", "accuracy": accuracy, "n": 100, "run_id": new_run_id(),
              "identity": {"trainer": "CoOp", "dataset": dataset, "seed": seed, "eval_only": False}}
    record.update(fields)
    return record


def mark_finished(run, accuracy=42.0):
    """Write the record train.py would write for a planned ``run`` (its identity, its links to its needs)."""
    links = [load_record(need.output_dir)[0]["run_id"] for need in run.needs]
    record = finished_record(accuracy, identity=expected_identity(run))
    if links:
        if run.eval_only:
            record["evaluated"] = {"run_id": links[0]}
        else:
            record["built_on"] = links[0]
    write_results(run.output_dir, record)
    return record
