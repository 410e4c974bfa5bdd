"""The hosts: one module per prompt learner, beside the parts some of them share.

Importing the package imports every module in it, so a host is registered (trainer and config node) by adding
its file here; nothing else lists the hosts.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
