from __future__ import annotations

import pytest
from annotate_support import label_all, make_store
from typer.testing import CliRunner

from annotation.queue import Queue
from core.store import Store
from traitdose.cli import app

runner = CliRunner()


@pytest.fixture
def store_dir(tmp_path):
    make_store(tmp_path / "store", routed=3, accepted=6)
    return tmp_path / "store"


def invoke(*args: str):
    return runner.invoke(app, ["annotate", *args])


def test_status_and_merge_from_the_command_line(store_dir):
    out = invoke("add-annotator", "ann", "--dataset", "demo", "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    queue = Queue.for_dataset(Store(store_dir), "demo")
    assert queue.annotator_for_token(token) == "ann"  # routed items were synced on the way
    assert len(queue.items()) == 3
    queue.add_annotator("bob")
    label_all(queue, {"ann": ["chosen", "rejected", "chosen"], "bob": ["chosen", "rejected", "tie"]})

    status = invoke("status", "--dataset", "demo", "--store", str(store_dir))
    assert status.exit_code == 0, status.output
    assert "3 item(s): 3 done (2 with a majority), 0 pending" in status.output
    assert "Cohen's kappa ann vs bob:" in status.output and "Krippendorff's alpha" in status.output

    merged = invoke("merge", "--dataset", "demo", "--store", str(store_dir))
    assert merged.exit_code == 0, merged.output
    assert (
        "wrote demo@v2 (parent demo@v1): 2 resolved, 0 both bad, 0 ties dropped, 1 still routed"
        in merged.output
    )
    v2 = Store(store_dir).resolve("demo@v2")
    assert v2.manifest["annotation"]["resolved"] == 2
    assert (v2.path / "README.md").exists()


def test_audit_sample(store_dir):
    out = invoke("add", "demo@v1", "--sample", "4", "--k", "1", "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    assert "queued 4 of 4 selected accepted item(s) of demo@v1 for audit" in out.output
    kinds = [row["kind"] for row in Queue.for_dataset(Store(store_dir), "demo").items()]
    assert kinds.count("audit") == 4 and kinds.count("routed") == 3
    status = invoke("status", "--dataset", "demo", "--store", str(store_dir))
    assert "audit: 0/0 resolved audit items agree with the stored label: n/a" in status.output


def test_bad_input_is_one_line(store_dir):
    out = invoke("status", "--dataset", "nope", "--store", str(store_dir))
    assert out.exit_code == 1
    assert "error: no dataset 'nope'" in out.output and "Traceback" not in out.output
    out = invoke("add", "demo@v1", "--where", "bogus = 1", "--store", str(store_dir))
    assert out.exit_code == 1 and "--where 'bogus = 1'" in out.output
    out = invoke("add", "demo@v1", "--store", str(store_dir))
    assert out.exit_code == 1 and "give --sample N or --where EXPR" in out.output


def test_names_with_markup_are_printed_as_text(store_dir):
    out = invoke("add-annotator", "eve[/]", "--dataset", "demo", "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    assert "annotator eve[/] on demo" in out.output
    token = out.output.strip().splitlines()[-1]
    queue = Queue.for_dataset(Store(store_dir), "demo")
    assert queue.annotator_for_token(token) == "eve[/]"
    queue.add_annotator("[bold]mallory")
    status = invoke("status", "demo", "--store", str(store_dir))
    assert status.exit_code == 0, status.output
    assert "eve[/]" in status.output and "[bold]mallory" in status.output


def test_dataset_is_an_argument_with_the_old_option_as_an_alias(store_dir):
    as_option = invoke("status", "--dataset", "demo", "--store", str(store_dir))  # syncs routed items first
    as_arg = invoke("status", "demo", "--store", str(store_dir))
    assert as_arg.exit_code == as_option.exit_code == 0
    assert as_arg.output == as_option.output.replace("queued 3 routed item(s) from demo\n", "")
    clash = invoke("status", "demo", "--dataset", "other", "--store", str(store_dir))
    assert clash.exit_code == 1 and "two datasets given" in clash.output
    missing = invoke("status", "--store", str(store_dir))
    assert missing.exit_code == 1 and "name the dataset" in missing.output


def test_secure_cookies_default_on_off_loopback():
    from annotation.cli import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
