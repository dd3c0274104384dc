"""Upload a converted folder to the Hugging Face Hub: plan with huggingface_hub, then commit that plan.

`plan_upload` builds the commit the way `HfApi.upload_folder` does (every file below the folder,
sorted, less huggingface_hub's DEFAULT_IGNORE_PATTERNS, as `CommitOperationAdd`s), without the
network; `--dry-run` prints it, and `upload` sends exactly those operations with `create_commit`.
The card's front matter is parsed locally before anything is sent.
"""

from pathlib import Path
from typing import List

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

REQUIRED_METADATA = ("library_name", "license", "pipeline_tag", "tags")


def check_card(folder: Path) -> ModelCard:
    """The folder's README.md parsed by huggingface_hub, refusing a card without its metadata."""
    card_file = Path(folder) / "README.md"
    if not card_file.exists():
        raise FileNotFoundError(f"{folder} has no README.md model card")
    card = ModelCard.load(card_file)
    missing = [key for key in REQUIRED_METADATA if not getattr(card.data, key, None)]
    if missing:
        raise ValueError(f"{card_file}: front matter lacks {', '.join(missing)}")
    return card


def plan_upload(folder: Path) -> List[CommitOperationAdd]:
    """The files an upload of `folder` commits, as huggingface_hub's own operations (no network)."""
    folder = Path(folder).expanduser().resolve()
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} is not a converted folder (no config.json)")
    check_card(folder)
    files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.glob("**/*")) if path.is_file()}
    kept = filter_repo_objects(files, ignore_patterns=DEFAULT_IGNORE_PATTERNS)
    return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=files[name]) for name in kept]


def describe_plan(repo_id: str, operations: List[CommitOperationAdd]) -> str:
    lines = [f"{repo_id}: {len(operations)} files, {sum(op.upload_info.size for op in operations) / 1e6:,.1f} MB"]
    lines += [f"  {op.path_in_repo}  {op.upload_info.size:,} bytes" for op in operations]
    return "\n".join(lines)


def upload(folder: Path, repo_id: str, *, dry_run: bool = False, api: HfApi = None) -> List[CommitOperationAdd]:
    """Create `repo_id` if needed and commit the folder's files to it (dry_run: only plan and print)."""
    operations = plan_upload(folder)
    print(describe_plan(repo_id, operations))
    if dry_run:
        return operations
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    api.create_commit(
        repo_id, operations=operations, commit_message=f"Upload {Path(folder).name} (mlx-audio-lid)", repo_type="model"
    )
    print(f"uploaded to https://huggingface.co/{repo_id}")
    return operations
