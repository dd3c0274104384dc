"""conversion/catalogue.py on local copies of every source (tiny models in the published layouts),
and the upload step through huggingface_hub's own commit planning (no network)."""

import contextlib
import hashlib
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, ModelCard

from mlx_audio_lid.upload import check_card, plan_upload, upload

import conversion_sources as sources

SCRIPT = Path(__file__).parents[1] / "conversion" / "catalogue.py"


def load_script():
    spec = importlib.util.spec_from_file_location("catalogue", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalogue = load_script()


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    """DIR/<source name> for every source of the catalogue, as --sources reads them."""
    root = tmp_path_factory.mktemp("sources")
    for index, source in enumerate(catalogue.MMS_LID):
        sources.tiny_mms(root / source.split("/")[-1], num_labels=int(source.split("-")[-1]), seed=index)
    for source in catalogue.SPEECHBRAIN:
        sources.speechbrain(source, root / source.split("/")[-1])
    return root


@pytest.fixture(scope="module")
def built(source_dir, tmp_path_factory):
    """The whole catalogue converted and uploaded with --dry-run: (tree, arguments, exit status, output)."""
    tree = tmp_path_factory.mktemp("tree")
    # These random models are harsher than convert's defaults assume: the ECAPA fixtures amplify
    # embedding differences ~100x (README), so float16 moves their log-probabilities by ~1.3 (default bound 0.5); and
    # 4 bits on 32-wide layers reorder the near-tied top labels of a random 4017-way classifier.
    arguments = ["--out", str(tree), "--sources", str(source_dir), "--bound", "fp16=2", "4bit=5,0",
                 "--upload", "--dry-run"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = catalogue.main(arguments)
    return tree, arguments, status, printed.getvalue()


def test_whole_catalogue_converts_into_a_hub_ready_tree(built):
    tree, _, status, printed = built
    assert status == 0
    results = json.loads((tree / "catalogue.json").read_text(encoding="utf-8"))
    expected = {f"mlx-community/{s.split('/')[-1]}-{v}" for s, variants in catalogue.CATALOGUE.items() for v in variants}
    assert len(expected) == 6 * 3 + 2
    assert {e["repo_id"] for e in results} == expected
    assert {e["status"] for e in results} == {"converted"}
    for entry in results:
        folder = tree / entry["repo_id"]
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        card = ModelCard.load(folder / "README.md")
        assert card.data.base_model == entry["source"]
        assert f'load("{entry["repo_id"]}")' in card.text
        assert config["dtype"] == "float16"
        assert ("quantization" in config) == (entry["variant"] != "fp16")
        if "quantization" in config:
            assert config["quantization"]["bits"] == int(entry["variant"][0])
        # --dry-run printed huggingface_hub's plan for this repo: every file, with its size.
        plan = plan_upload(folder)
        assert f"{entry['repo_id']}: {len(plan)} files" in printed
        for operation in plan:
            assert f"  {operation.path_in_repo}  {operation.upload_info.size:,} bytes" in printed
    summary = (tree / "CATALOGUE.md").read_text(encoding="utf-8")
    assert len(re.findall(r"^\| mlx-community/", summary, flags=re.M)) == len(expected)


def test_rerun_keeps_existing_folders(built):
    tree, arguments, _, _ = built
    weights = tree / "mlx-community" / "mms-lid-256-4bit" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert catalogue.main(arguments[:4]) == 0  # default bounds, but nothing is converted again
    results = json.loads((tree / "catalogue.json").read_text(encoding="utf-8"))
    assert {e["status"] for e in results} == {"exists"}
    assert weights.stat().st_mtime_ns == before


def test_variant_that_misses_its_bound_is_left_out(source_dir, tmp_path):
    arguments = ["--out", str(tmp_path), "--sources", str(source_dir), "--only", "lang-id-voxlingua107-ecapa",
                 "--bound", "fp16=0.01"]
    assert catalogue.main(arguments) == 1
    (entry,) = json.loads((tmp_path / "catalogue.json").read_text(encoding="utf-8"))
    assert entry["status"].startswith("left out: float16 conversion") and "misses its bound" in entry["status"]
    assert not (tmp_path / entry["repo_id"]).exists()


def test_upload_plan_is_huggingface_hubs(built, capsys):
    tree = built[0]
    folder = tree / "mlx-community" / "mms-lid-126-8bit"
    (folder / ".git").mkdir(exist_ok=True)  # what upload_folder never sends
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    operations = upload(folder, "mlx-community/mms-lid-126-8bit", dry_run=True)
    assert all(isinstance(op, CommitOperationAdd) for op in operations)
    assert sorted(op.path_in_repo for op in operations) == ["README.md", "config.json", "model.safetensors"]
    for op in operations:
        data = (folder / op.path_in_repo).read_bytes()
        assert op.upload_info.size == len(data)
        assert op.upload_info.sha256 == hashlib.sha256(data).digest()
    assert "mlx-community/mms-lid-126-8bit: 3 files" in capsys.readouterr().out


def test_card_without_license_is_not_uploaded(built, tmp_path):
    folder = built[0] / "mlx-community" / "mms-lid-126-fp16"
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        (copy / name).write_bytes((folder / name).read_bytes())
    card = (folder / "README.md").read_text(encoding="utf-8")
    (copy / "README.md").write_text(re.sub(r"^license: .*\n", "", card, count=1, flags=re.M), encoding="utf-8")
    with pytest.raises(ValueError, match="front matter lacks license"):
        check_card(copy)
    with pytest.raises(ValueError, match="lacks license"):
        upload(copy, "mlx-community/x", dry_run=True)
