"""What a judge's ``score`` receives and may return, held as columns (a leaf module: judges
and the run path both import it).

    Items               the distinct (example, text) items of one run, a sequence of dicts
    ScoreColumns        a judge's results as columns, a sequence of dicts
    column(items, name) -> list               one field of every item
    example_column(items, name) -> (values, keys)
                                              an example field: each distinct value once,
                                              and each item's index into them
    shared(items, key, make)                  a value derived from the items, computed once per run

``Judge.score(items)`` sees a sequence of dicts (``items[i]["text"]``, ``items[i]["context"]``...)
and returns one ``{metric: (value, raw, error)}`` per item.  ``run_judges`` hands the judges an
``Items``: the same dicts, built only when a judge indexes it, while the metric judges read
whole columns (``column``) without building any dict.  Judges that score the same items in one
run get the same ``Items`` object, so what one of them derives (the normalised answers, the
coverage of each answer: ``shared``) the next one reuses; it goes when the run ends.  The
helpers accept a plain list of dicts as well (tests and callers outside a run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class ExampleColumns(dict):
    """name -> the examples' column as a Python list, converted from an Arrow table on first use
    (one per run: the Items of every judge share it)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def __missing__(self, name: str) -> list:
        values = self[name] = self.table.column(name).to_pylist()
        return values


class Items(Sequence):
    """``n`` items: ``columns`` maps the candidate fields (text, candidate_id, example_id) to
    functions making their lists, built on first use; every other field is the example's
    (``examples[name][example_rows[i]]``)."""

    def __init__(self, n: int, columns: dict[str, Callable[[], list]], examples: ExampleColumns,
                 example_rows: list[int]):
        self._n = n
        self._make = columns
        self._cols: dict[str, list] = {}
        self.examples = examples
        self.example_rows = example_rows
        self.memo: dict = {}  # shared(): values derived from these items, for this run only

    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> list:
        col = self._cols.get(name)
        if col is None:
            if name in self._make:
                col = self._make[name]()
            else:
                values = self.examples[name]
                col = [values[e] for e in self.example_rows]
            self._cols[name] = col
        return col

    def example_column(self, name: str) -> tuple[list, list[int]]:
        """(the field's value of each example these items refer to, each item's index into them)."""
        key = f"example:{name}"
        if key not in self._cols:
            import numpy as np

            rows, keys = np.unique(np.asarray(self.example_rows, np.int64), return_inverse=True)
            values = self.examples[name]
            self._cols[key] = ([values[e] for e in rows.tolist()], keys.tolist())
        return self._cols[key]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        row = {name: self.examples[name][self.example_rows[i]] for name in self.examples.table.column_names}
        row.update((name, self.column(name)[i]) for name in self._make)
        return row


def column(items, name: str) -> list:
    """``[it[name] for it in items]``, without building the dicts of an ``Items``."""
    return items.column(name) if isinstance(items, Items) else [it[name] for it in items]


def example_column(items, name: str) -> tuple[list, list[int]]:
    """(distinct values, each item's index into them) of an example field: an ``Items`` answers
    with its examples' column; a list is de-duplicated by value (``None`` counts as "")."""
    if isinstance(items, Items):
        return items.example_column(name)
    index: dict = {}
    keys = [index.setdefault(it[name] or "", len(index)) for it in items]
    return list(index), keys


def shared(items, key: str, make: Callable[[], object]):
    """``make()``, computed once per ``Items`` (the judges of one run share it); for a plain
    list, computed on every call."""
    if not isinstance(items, Items):
        return make()
    if key not in items.memo:
        items.memo[key] = make()
    return items.memo[key]


class ScoreColumns(Sequence):
    """A judge's results as columns: ``values`` maps each metric to one value per item;
    ``missing`` is the error recorded where a value is None.  ``results[i]`` is the dict
    ``{metric: (value, None, error)}`` of item i, as ``Judge.score`` returns."""

    def __init__(self, values: dict[str, list], missing: str | None = None):
        self.values = values
        self.missing = missing
        self._n = len(next(iter(values.values()))) if values else 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        return {m: (v[i], None, None) if v[i] is not None else (None, None, self.missing)
                for m, v in self.values.items()}

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None
