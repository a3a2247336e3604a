"""The report's results fingerprint follows the results, not the code or the clock."""

import copy

import yaml

from aebench.report.environment import pipeline_lock_hash

LOCK = {
    "schema": "2.0",
    "stages": {
        "train@a": {
            "deps": [{"path": "aebench/train.py", "md5": "c0de"}],
            "outs": [
                {"path": "models/a", "md5": "m0del.dir"},
                {"path": "timings/train/a.json", "md5": "t1me"},
            ],
        },
        "report": {"outs": [{"path": "reports/README.md", "md5": "rep0"}]},
    },
}


def _hash(tmp_path, lock):
    path = tmp_path / "dvc.lock"
    path.write_text(yaml.safe_dump(lock))
    return pipeline_lock_hash(path)


def test_fingerprint_changes_with_results_only(tmp_path):
    base = _hash(tmp_path, LOCK)
    edited_code = copy.deepcopy(LOCK)
    edited_code["stages"]["train@a"]["deps"][0]["md5"] = "other"
    new_timing = copy.deepcopy(LOCK)
    new_timing["stages"]["train@a"]["outs"][1]["md5"] = "later"
    new_report = copy.deepcopy(LOCK)
    new_report["stages"]["report"]["outs"][0]["md5"] = "rerendered"
    assert _hash(tmp_path, edited_code) == _hash(tmp_path, new_timing) == base
    assert _hash(tmp_path, new_report) == base
    new_model = copy.deepcopy(LOCK)
    new_model["stages"]["train@a"]["outs"][0]["md5"] = "retrained.dir"
    assert _hash(tmp_path, new_model) != base
