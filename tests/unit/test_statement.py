"""Named SQL parameters as each driver takes them (``store/held.py``)."""

from __future__ import annotations

from companion_ws.store.held import Statement


def test_named_parameters_become_each_drivers_in_order_repeats_included() -> None:
    statement = Statement("UPDATE t SET a = :at, b = :b WHERE id = :sid AND a < :at")
    assert statement.text("sqlite") == "UPDATE t SET a = ?, b = ? WHERE id = ? AND a < ?"
    assert statement.text("postgresql") == "UPDATE t SET a = $1, b = $2 WHERE id = $3 AND a < $4"
    assert statement.args({"at": 5, "b": "x", "sid": "s"}) == (5, "x", "s", 5)
    cast = Statement("SELECT :v::text")  # a PostgreSQL cast is not a parameter
    assert cast.text("postgresql") == "SELECT $1::text"
    assert cast.names == ("v",)
