"""`cellcensus serve` on an address it cannot listen on: one line, before any URL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.api.commands import check_port_free


def a_store(folder: Path) -> Path:
    """An empty store: what ingest writes first (serve refuses a folder that is not a store)."""
    (folder / "metadata.json").write_text("{}", encoding="utf-8")
    return folder


def test_serve_on_a_busy_port_says_so_and_names_another_port(tmp_path: Path) -> None:
    a_store(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path), "--port", str(port)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"port {port} on 127.0.0.1 is in use" in output
    assert f"give another --port, e.g. --port {port + 1}" in output
    assert "cellcensus service on" not in output and "Traceback" not in output
    assert [path.name for path in tmp_path.iterdir()] == ["metadata.json"]  # nothing made


def test_serve_on_an_address_of_no_interface_says_so(tmp_path: Path) -> None:
    a_store(tmp_path)
    result = CliRunner().invoke(
        app, ["serve", "--store", str(tmp_path), "--host", "192.0.2.1", "--port", "8000"]
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert "cannot listen on 192.0.2.1 port 8000" in output and "--host or --port" in output


@pytest.mark.parametrize("port", ["-1", "99999"])
def test_serve_on_a_port_out_of_range_says_which_ports_there_are(tmp_path: Path, port: str) -> None:
    a_store(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path), "--port", port])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"--port {port}: give a port from 1 to 65535" in output
    assert "cellcensus service on" not in output and "Traceback" not in output


def test_port_0_is_refused_since_the_service_would_listen_elsewhere_than_it_says() -> None:
    # Called directly: through `serve`, a port 0 taken would start a service that never ends.
    with pytest.raises(CellcensusError, match="--port 0: give a port from 1 to 65535"):
        check_port_free("127.0.0.1", 0)
