"""The hosts: one module per prompt learner, built on the host contract (``trainers/host_api/``); the parts some
hosts share are in ``parts/``.

``register_all`` imports every module here, so a host is registered (trainer and config node) by adding its file
here; nothing else lists the hosts. ``trainers/__init__.py`` calls it; importing one module of this package
imports only what that module needs.
"""
import importlib
import pkgutil


def register_all():
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
