"""A name -> class registry with the same surface as ``dassl.utils.Registry``."""
import difflib


class Registry:
    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj, force=False):
        if name in self._obj_map and not force:
            raise KeyError(f'An object named "{name}" was already registered in the "{self._name}" registry')
        self._obj_map[name] = obj

    def register(self, obj=None, force=False):
        """Use as ``@REGISTRY.register()`` or ``REGISTRY.register(cls)``."""
        if obj is None:
            def wrapper(fn_or_class):
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class
            return wrapper
        self._do_register(obj.__name__, obj, force=force)
        return obj

    def get(self, name):
        if name not in self._obj_map:
            raise KeyError(unknown_name_message(self._name, name, self.registered_names()))
        return self._obj_map[name]

    def registered_names(self):
        return list(self._obj_map.keys())

    def __contains__(self, name):
        return name in self._obj_map


def unknown_name_message(kind, name, available):
    """The error text for an unknown registry name: the closest match first, then every choice."""
    by_lower = {choice.lower(): choice for choice in available}  # "Coop" means CoOp, not CoCoOp
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f' Did you mean "{by_lower[close[0]]}"?' if close else ""
    return f'No {kind} named "{name}".{hint} Registered: {", ".join(sorted(available))}'


def check_availability(requested, available, kind="object"):
    """Raise ValueError naming the closest registered choice (Dassl's ``check_availability``)."""
    if requested not in available:
        raise ValueError(unknown_name_message(kind, requested, list(available)))
