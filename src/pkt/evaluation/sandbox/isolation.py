"""Namespaces, mounts and prctl for :mod:`pkt.evaluation.sandbox.runner` (stdlib only; imported by the runner by path).

:func:`isolate` runs in the supervisor of one run, before it forks the program process (see
``pkt.evaluation.sandbox.run`` for what each step protects against); :func:`prctl` is shared with the program side.
"""

import contextlib
import ctypes
import os
import sys

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
_LIBC = ctypes.CDLL(None, use_errno=True)


def _libc_call(name: str, *args: object) -> None:
    """Call a libc function that returns 0 on success; raise OSError with errno otherwise."""
    if getattr(_LIBC, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def prctl(option: int, value: int, required: bool = True) -> None:
    with contextlib.suppress(*(() if required else (OSError,))):
        _libc_call("prctl", option, *(ctypes.c_ulong(v) for v in (value, 0, 0, 0)))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if text is None else text.encode() for text in (source, target, fstype, data)]
    _libc_call("mount", enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3])


def isolate(cfg: dict) -> list[str]:
    """Enter namespaces and hide the host file system where allowed; return notes on what applied."""
    if cfg["uid"] is None:
        return ["no privilege drop (not root)", _user_netns()]
    notes = [f"privileges dropped to uid/gid {cfg['uid']}/{cfg['gid']}"]
    try:
        _libc_call("unshare", _CLONE_NEWNET)
        notes.append("network namespace (no interfaces up)")
    except OSError as exc:
        notes.append(f"network NOT isolated ({exc.strerror})")
    try:
        _libc_call("unshare", _CLONE_NEWNS)
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        _mask_file_system(cfg)
        notes.append("mount namespace: workdir, /tmp, /var/tmp, /dev/shm are private tmpfs")
    except OSError as exc:  # our cwd is still the on-disk workdir the parent made
        notes.append(f"mount isolation failed ({exc.strerror}): workdir on disk, /tmp shared")
        masks, shared = _masks(cfg["workdir"])
        if set(masks) - shared:  # e.g. a pyenv under a 0700 /root: the dropped uid can import nothing new
            cfg["preload"] = True
            notes.append("Python install not readable by the sandbox uid: only preloaded stdlib modules")
    return notes


def _user_netns() -> str:
    """Unprivileged network isolation: a user namespace mapping our own ids, plus a network namespace."""
    uid, gid = os.getuid(), os.getgid()
    try:
        _libc_call("unshare", _CLONE_NEWUSER | _CLONE_NEWNET)
        maps = {"setgroups": "deny", "uid_map": f"{uid} {uid} 1", "gid_map": f"{gid} {gid} 1"}
        for name, text in maps.items():
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    except OSError as exc:
        return f"network NOT isolated ({exc.strerror})"
    return "network namespace via user namespace"


def _masks(workdir: str) -> tuple[dict[str, set[str]], set[str]]:
    """Directories to cover with a tmpfs -> entries to bind back. Shared temp dirs are always covered; an
    ancestor of the Python install that the sandbox uid cannot search (a 0700 /root holding a pyenv) is
    covered too, keeping only the entries on the way to Python (the rest of /root disappears)."""
    shared = {os.path.realpath(d) for d in _SHARED_TMP if os.path.isdir(d)}
    masks: dict[str, set[str]] = {d: set() for d in shared}
    python = [*sys.path, sys.prefix, sys.base_prefix, sys.executable, os.path.realpath(sys.executable)]
    for path in sorted({os.path.realpath(p) for p in python if p and os.path.exists(p)} | {workdir}):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent, child = "/" + "/".join(parts[:depth]), parts[depth]
            if parent in shared:
                if path != workdir:  # the workdir gets a fresh mount point instead
                    masks[parent].add(child)
            elif not os.stat(parent).st_mode & 0o001:
                masks.setdefault(parent, set()).add(child)
    return masks, shared


def _mask_file_system(cfg: dict) -> None:
    """Cover the masks with tmpfs, bind the kept entries back, and mount a private tmpfs workdir."""
    workdir, mb = cfg["workdir"], cfg["max_file_mb"]
    masks, shared = _masks(workdir)
    keep = {f"{d}/{c}": os.open(f"{d}/{c}", os.O_PATH) for d in masks for c in masks[d]}
    try:
        for directory in sorted(masks):
            opts = f"mode=1777,size={mb}m" if directory in shared else "mode=755,size=1m"
            _mount("tmpfs", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, opts + ",nr_inodes=10000")
            for child in masks[directory]:
                path, source = f"{directory}/{child}", f"/proc/self/fd/{keep[f'{directory}/{child}']}"
                if os.path.isdir(source):
                    os.mkdir(path)
                else:
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
                _mount(source, path, None, _MS_BIND | _MS_REC)
    finally:
        for fd in keep.values():
            os.close(fd)
    os.makedirs(workdir, exist_ok=True)
    opts = f"mode=700,uid={cfg['uid']},gid={cfg['gid']},size={4 * mb}m,nr_inodes=10000"
    _mount("tmpfs", workdir, "tmpfs", _MS_NOSUID | _MS_NODEV, opts)
    os.chdir(workdir)
