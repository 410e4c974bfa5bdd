"""How one number of a table is written: the mean, its spread over seeds and each seed's number."""

MISSING = "-"


def number(value, digits):
    return MISSING if value is None else f"{value:.{digits}f}"


def signed(value, digits):
    return MISSING if value is None else f"{value:+.{digits}f}"


def mean_std_cell(mean, std, digits, per_seed=()):
    """``mean ± std``, and each seed's number after it when there are several: ``70.38 ± 0.58 (69.6 / ...)``."""
    if mean is None:
        return MISSING
    text = f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
    if len(per_seed) > 1:
        text += " (" + " / ".join(f"{value:.{digits}f}" for value in per_seed) + ")"
    return text
