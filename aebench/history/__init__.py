"""The benchmark's results across commits: read from git, compared step by step, drawn and
published.

``git_store`` reads committed files with one ``git cat-file`` process (no checkout, no
retraining); ``snapshots`` turns one commit's committed results into comparable series;
``steps`` tests each change between consecutive comparable commits; ``page`` draws the history
page and its CSV; ``site`` builds the static site ``aebench publish`` writes.
"""
