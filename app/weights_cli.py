"""``python -m app weights list|download|fetch-official|convert|verify|check|push`` — the weights toolbox.

``push`` is the one step a deployer runs per model: it converts the authors' files in
``checkpoints/<id>/`` (when not done yet), writes the model card, uploads both to the
deployer's namespace, tags the commit and records repo, commit and sha256 in the pins file
(:mod:`app.weights.pins`) the app reads.

Register it on the app's CLI with :func:`add_parser`; ``args.handler(args)`` then returns the
exit status. ``python -m app.weights_cli ...`` runs it on its own. Every failure prints the
same message the UI shows and exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app import registry
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.registry import MIRROR_REVISION
from app.specs import ModelSpec
from app.weights import hub, pins
from app.weights.archive import extract_members, fetch_archive
from app.weights.convert import CARD_NAME, convert
from app.weights.fetch import fetch, record_first_use
from app.weights.loader import instantiate, read_entries
from app.weights.resolve import (
    SAFETENSORS_NAME,
    Location,
    describe_expected,
    find_local,
    hub_files,
    local_dir,
    locate,
    mirror,
    missing_message,
    provisioned_dir,
    where,
)
from app.weights.sources import describe_source
from app.weights.status import availability, download, weights_location
from app.weights.verify import verify_file


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``weights`` command (and its sub-commands) to an argparse ``subparsers``."""
    parser = subparsers.add_parser("weights", help="list, download, convert, verify and mirror model weights",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="weights_command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="every model: local / cached / first use / missing, size, source, licence")
    download = sub.add_parser("download", help="fetch weights into the Hugging Face cache (mirror, or the "
                              "authors' Hub archive converted)")
    download.add_argument("ids", nargs="*", metavar="MODEL_ID")
    download.add_argument("--all", action="store_true", help="every neural model")
    download.add_argument("--force", action="store_true", help="download again even if cached")
    official = sub.add_parser("fetch-official", help="fetch the authors' own archive from the Hub, extract, convert")
    official.add_argument("id", metavar="MODEL_ID")
    official.add_argument("--no-convert", action="store_true",
                          help="keep only the official files (still read safely and loaded strictly first)")
    conv = sub.add_parser("convert", help="official release files -> model.safetensors + sha256 + README.md")
    conv.add_argument("id", metavar="MODEL_ID")
    conv.add_argument("--src", type=Path, help="folder with the official files (default checkpoints/<id>/)")
    conv.add_argument("--out", type=Path, help="output folder (default: the source folder)")
    conv.add_argument("--no-check", action="store_true", help="skip the strict load into the network")
    verify = sub.add_parser("verify", help="check files, sha256 pins and a strict load")
    verify.add_argument("ids", nargs="*", metavar="MODEL_ID", help="default: every model with weights here")
    check = sub.add_parser("check", help="fetch, load and run each model on example photos; flag fills much worse "
                           "than Telea's or degenerate (a bad conversion)")
    check.add_argument("ids", nargs="*", metavar="MODEL_ID")
    check.add_argument("--all", action="store_true", help="every neural model")
    check.add_argument("--evalset", type=Path, default=None,
                       help="evaluation set with masks/object/ (default $INPAINT_EVALSET or ../shared/evalset)")
    check.add_argument("--photos", type=int, default=3, help="evaluation photos to score (default 3)")
    push = sub.add_parser("push", help="convert if needed, upload to a Hub repo, tag it, record the pins")
    push.add_argument("id", metavar="MODEL_ID")
    push.add_argument("--namespace", help="your Hub user or organisation (repo name from the registry)")
    push.add_argument("--repo", help="namespace/name, instead of --namespace")
    push.add_argument("--folder", type=Path, help="converted folder (default checkpoints/<id>/, else the weights "
                      "the app converted from the authors' release on first use)")
    push.add_argument("--private", action="store_true")
    push.add_argument("--token", help="Hub token (default: HF_TOKEN or `hf auth login`)")
    push.add_argument("--no-record", action="store_true", help=f"do not write the pins file ({pins.PINS_ENV})")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``weights`` command; 0 on success, 1 on failure (message on stderr)."""
    commands = {"list": _list, "download": _download, "fetch-official": _fetch_official, "convert": _convert,
                "verify": _verify, "check": _check, "push": _push}
    try:
        return commands[args.weights_command](args)
    except InpaintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _neural(ids: list[str], every: bool) -> list[ModelSpec]:
    """The models named (inpainters or the text finder), or with ``every`` all that have weights."""
    if every:
        return [spec for spec in _with_weights() if spec.kind != "classical"]
    if not ids:
        raise ModelUnavailableError("Name at least one model id, or pass --all.")
    specs = [registry.with_weights(model_id) for model_id in ids]
    classical = [spec.id for spec in specs if spec.kind == "classical"]
    if classical:
        raise ModelUnavailableError(f"{', '.join(classical)} need no weights.")
    return specs


def _with_weights() -> tuple[ModelSpec, ...]:
    """Every model the weights commands list: the inpainters, then the text finders (*Find text*)."""
    return registry.MODELS + registry.TEXT_FINDERS


# ------------------------------------------------------------------------------- list


def _list(args: argparse.Namespace) -> int:
    """One line per model: status, size, where its weights come from (named as the page and README name it), licence."""
    rows = [("MODEL", "STATUS", "SIZE", "SOURCE", "LICENCE")] + [_row(spec) for spec in _with_weights()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def _row(spec: ModelSpec) -> tuple[str, str, str, str, str]:
    if spec.kind == "classical":
        return spec.id, "built-in", "-", describe_source(spec).label, spec.licence
    location = weights_location(spec)
    status = {"remote": "first use"}.get(location.status, location.status)  # fetched when first chosen
    if not availability(spec).ok:  # the UI, the library and the API say the same
        status = "missing"
    source = describe_source(spec, location)  # named offline too: where it would come from
    return spec.id, status, source.size, source.label, spec.licence


# --------------------------------------------------------------------------- download


def _download(args: argparse.Namespace) -> int:
    failed = 0
    for spec in _neural(args.ids, args.all):
        try:  # progress: huggingface_hub's tqdm bars
            paths = fetch(spec, force=True).values() if args.force and mirror(spec) else download(spec)
        except InpaintError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        for path in paths:
            print(f"{spec.id}: {path}")
        if find_local(spec):
            print(f"{spec.id}: note: {local_dir(spec)} has weights too; they take precedence.")
    return 1 if failed else 0


# --------------------------------------------------------------------- fetch-official


def _fetch_official(args: argparse.Namespace) -> int:
    """Extract and check in a staging folder: only files read safely that load strictly reach ``checkpoints/``.

    A refused file (bad hash, hostile pickle, failed strict load) would otherwise stay in the folder the
    app serves from and be listed as ready; ``--no-convert`` skips writing safetensors, never the check.
    """
    spec = registry.with_weights(args.id)
    archive = fetch_archive(spec)
    folder = local_dir(spec)
    with _staging(folder) as staging:
        extracted = extract_members(spec, archive, staging)
        try:
            done = convert(spec, staging, check=True)
        except InpaintError as exc:
            raise WeightsError(f"{exc} Nothing from {archive.name} was kept in {folder}.") from exc
        kept = [*extracted] if args.no_convert else [*extracted, done.card, done.weights]  # the weights last
        folder.mkdir(exist_ok=True)
        for path in kept:
            os.replace(path, folder / path.name)
    for path in extracted:
        print(f"{spec.id}: extracted {folder / path.name} (read safely, loads strictly)")
    if not args.no_convert:
        print(f"wrote {folder / done.weights.name} ({done.tensors} tensors, {done.size} bytes) and "
              f"{folder / done.card.name}")
        print(f"sha256 {done.sha256}")
        print(f'registry pin: files={{"{SAFETENSORS_NAME}": "{done.sha256}"}}')
    return 0


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A hidden folder beside ``folder`` (same disk: moving out of it is a rename), removed afterwards."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".fetching-{folder.name}-", dir=folder.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------- convert


def _convert(args: argparse.Namespace) -> int:
    spec = registry.with_weights(args.id)
    src = args.src or local_dir(spec)
    done = convert(spec, src, args.out, check=not args.no_check)
    print(f"wrote {done.weights} ({done.tensors} tensors, {done.size} bytes) and {done.card}")
    print(f"sha256 {done.sha256}")
    print(f'registry pin: files={{"{SAFETENSORS_NAME}": "{done.sha256}"}}')
    return 0


# ----------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    specs = [registry.with_weights(i) for i in args.ids] if args.ids else [
        spec for spec in registry.NEURAL + registry.TEXT_FINDERS if locate(spec).status in {"local", "cached"}]
    if not specs:
        print("No weights to verify (see `weights list`).")
    failed = 0
    for spec in specs:
        try:
            print(f"{spec.id}: OK — {_verify_one(spec)}")
        except InpaintError as exc:
            print(f"{spec.id}: FAILED — {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _verify_one(spec: ModelSpec) -> str:
    """Re-hash (no memo), check pins and headers, then strict-load on the CPU; all on the one resolved location."""
    location = locate(spec)
    if location.status in {"missing", "remote"}:
        raise ModelUnavailableError(missing_message(spec, "they are neither in checkpoints/ nor cached"))
    note = _verify_local(spec, location) if location.status == "local" else _verify_cached(spec, location)
    source = location.source if location.status == "local" else f"cached weights of {where(spec)}"
    instantiate(spec, read_entries(spec, location.entries), "cpu", source=source)
    unpinned = {e.name: e.path for e in location.entries if location.status == "cached" and not e.sha256}
    if unpinned:  # checked and loaded strictly just now: this is their first use
        record_first_use(spec, unpinned)
        note += f"; pinned now in {pins.pins_path()}, later downloads must match"
    return note + "; loads strictly"


def _verify_cached(spec: ModelSpec, location: Location) -> str:
    notes = []
    for entry in location.entries:
        sha = verify_file(spec, entry.name, entry.path, entry.sha256, fresh=True)
        notes.append(f"{entry.name} sha256 {sha} ({'matches the pin' if entry.sha256 else 'not pinned'})")
    return "; ".join(notes)


def _verify_local(spec: ModelSpec, location: Location) -> str:
    entry = location.entries[0]
    if entry.official is not None:
        return f"official files in {local_dir(spec)}"
    sha = verify_file(spec, SAFETENSORS_NAME, entry.path, None, fresh=True)
    pinned = hub_files(spec).get(SAFETENSORS_NAME)
    match = "no pin" if not pinned else "matches the Hub pin" if pinned == sha else "differs from the Hub pin"
    return f"{entry.path} sha256 {sha} ({match})"


# ------------------------------------------------------------------------------ check


def _check(args: argparse.Namespace) -> int:
    """Fetch, load and run each model, and compare its fills with Telea's (see :mod:`app.weights_check`)."""
    from app import weights_check as check  # imports the benchmark's metrics: only for this command
    from app import weights_check_text as check_text
    from benchmarks.common import evalset_dir

    specs = _neural(args.ids, args.all)
    finders = [spec for spec in specs if spec in registry.TEXT_FINDERS]  # they find text: checked on pages
    inpainters = [spec for spec in specs if spec not in finders]
    codes = [check.run(inpainters, evalset_dir(args.evalset), args.photos)] if inpainters else []
    codes += [check_text.run(finders, evalset_dir(args.evalset), args.photos)] if finders else []
    return max(codes)


# ------------------------------------------------------------------------------- push


def _push(args: argparse.Namespace) -> int:
    spec = registry.with_weights(args.id)
    folder = args.folder or _push_folder(spec)
    repo = _push_repo(spec, args)
    if not (folder / SAFETENSORS_NAME).is_file() or not (folder / CARD_NAME).is_file():
        if not find_local(spec, folder):
            raise WeightsError(f"{folder} has neither {SAFETENSORS_NAME} nor the official files "
                               f"({describe_expected(spec)}): download the authors' files there first.")
        _convert(argparse.Namespace(id=spec.id, src=folder, out=None, no_check=False))
    sha = verify_file(spec, SAFETENSORS_NAME, folder / SAFETENSORS_NAME, None, fresh=True)
    oid, tagged = _upload(spec, repo, folder, sha, args)
    print(f"pushed {folder} to {repo} at commit {oid}" + (f", tagged {MIRROR_REVISION}" if tagged else ""))
    if args.no_record:
        print(f'pins for {spec.id}: repo_id="{repo}", revision="{oid}", files={{"{SAFETENSORS_NAME}": "{sha}"}}')
    else:
        path = pins.record_mirror(spec, repo, oid, {SAFETENSORS_NAME: sha})
        print(f"recorded {repo}@{oid} (sha256 {sha}) for {spec.id} in {path}: commit that file with the app")
    return 0


def _push_folder(spec: ModelSpec) -> Path:
    """``checkpoints/<id>/`` when it holds weights, else what the app converted from the authors' release.

    A model that came from the authors' Google Drive (or Hub archive, or HTTPS file) on its first use
    has its safetensors and card in the cache already, checked and pinned: mirroring it is one step.
    """
    local, converted = local_dir(spec), provisioned_dir(spec)
    if find_local(spec, local) or not (converted / SAFETENSORS_NAME).is_file() or not (converted / CARD_NAME).is_file():
        return local
    return converted


def _push_repo(spec: ModelSpec, args: argparse.Namespace) -> str:
    """``--repo``, else ``--namespace`` + the registry's repo name, else the configured mirror's repo."""
    if args.repo:
        repo = args.repo
    elif args.namespace and spec.weights:
        repo = f"{args.namespace.strip('/')}/{spec.weights.repo.rsplit('/', 1)[-1]}"
    else:
        repo = mirror(spec).repo_id if mirror(spec) else ""
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ModelUnavailableError("Pass --namespace <your Hub user or organisation> (or --repo namespace/name).")
    return repo


def _upload(spec: ModelSpec, repo: str, folder: Path, sha: str, args: argparse.Namespace) -> tuple[str, bool]:
    """create_repo + upload_folder (safetensors and card only) + tag; returns (commit, tagged)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=hub.settings().endpoint, token=args.token)
    try:
        api.create_repo(repo, repo_type="model", private=args.private or None, exist_ok=True)
        commit = api.upload_folder(repo_id=repo, folder_path=folder, allow_patterns=[SAFETENSORS_NAME, CARD_NAME],
                                   commit_message=f"{spec.name}: safetensors mirror (sha256 {sha[:12]})")
    except (HfHubHTTPError, OSError, ValueError) as exc:  # ValueError: the Hub rejected the card
        raise WeightsError(f"Pushing {folder} to {repo} failed: {exc}") from exc
    try:
        api.create_tag(repo, tag=MIRROR_REVISION, revision=commit.oid)
    except HfHubHTTPError as exc:
        if exc.response is None or exc.response.status_code != 409:
            raise WeightsError(f"Tagging {repo}@{commit.oid} as {MIRROR_REVISION} failed: {exc}") from exc
        return commit.oid, False
    return commit.oid, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.weights_cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["weights", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
