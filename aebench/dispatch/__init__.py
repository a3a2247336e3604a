"""`aebench run`: the stage matrix on Dask workers, assembled through DVC's run-cache.

DVC runs stages one at a time. Here each stage DVC would run is reproduced by a Dask worker in a
checkout of its own (a git worktree of the same commit, sharing the DVC cache); the run-cache
then lets one `dvc repro` in the user's workspace restore every result without re-running it and
render the report.
"""
