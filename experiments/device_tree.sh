#!/usr/bin/env bash
# The device machine receives a copy of this checkout's working tree, at most 64 MiB with the
# carried paths (the training subset and the wheels). The bundled weights take about 51 MiB of
# it, and three folders that a GPU run never reads take 72 more: the retired weights
# (weights-archive/), the kept training candidates (experiments/candidates/) and the older
# bundled weights that only decode old files (pywalloc/weights/legacy/, 32 MB; the defaults
# stay). Around the device call, leave them out of the tree (a candidate that a run starts
# from travels in the training subset instead), and put them back afterwards:
#
#   bash experiments/device_tree.sh slim    # a detached commit without DROP; the branch is kept
#   ... the device call (experiments/train_gpu.sh) ...
#   bash experiments/device_tree.sh back    # the branch checked out again, every file restored
#   bash experiments/device_tree.sh size    # MiB of tracked + untracked-not-ignored files,
#                                           # and of the same without DROP
#   bash experiments/device_tree.sh slim-bytes  # bytes without DROP (for gpu_prepare.sh)
#
# slim refuses a working tree with changes (commit them first), so nothing is lost when back
# switches branches. The files never leave git: slim commits their removal on a detached HEAD,
# and back checks the branch out again. If a session stops in between, `git switch main`
# restores everything.
set -eu
DROP=(weights-archive experiments/candidates pywalloc/weights/legacy)
MARK=.git/walloc-device-branch

tree_bytes() {  # tracked and untracked-not-ignored files, less the paths given
    local ex=()
    for p in "$@"; do ex+=(":(exclude)$p"); done
    git ls-files -z --cached --others --exclude-standard -- . "${ex[@]}" \
        | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1
}

case "${1:-}" in
    slim)
        if [ -n "$(git status --porcelain)" ]; then
            echo "device_tree.sh: the working tree has changes; commit them first" >&2
            exit 2
        fi
        branch=$(git symbolic-ref -q --short HEAD) || {
            echo "device_tree.sh: HEAD is detached already (run 'back' first)" >&2; exit 2; }
        echo "$branch" > "$MARK"
        git switch -q --detach
        present=()
        for p in "${DROP[@]}"; do [ -e "$p" ] && present+=("$p"); done
        if [ ${#present[@]} -gt 0 ]; then
            git rm -r -q -- "${present[@]}"
            git -c user.name=device-tree -c user.email=device-tree@localhost \
                commit -q -m "device tree: without ${present[*]} (experiments/device_tree.sh)"
        fi
        echo "slim: left out ${present[*]:-nothing}; $(( $(tree_bytes) >> 20 )) MiB travel"
        ;;
    back)
        [ -f "$MARK" ] || { echo "device_tree.sh: no slim tree to go back from" >&2; exit 2; }
        branch=$(cat "$MARK")
        git switch -q "$branch"
        rm -f "$MARK"
        echo "back on $branch"
        ;;
    size)
        all=$(tree_bytes); slim=$(tree_bytes "${DROP[@]}")
        echo "working tree $((all >> 20)) MiB; without ${DROP[*]}: $((slim >> 20)) MiB"
        ;;
    slim-bytes)
        tree_bytes "${DROP[@]}"
        ;;
    *)
        echo "usage: bash experiments/device_tree.sh slim|back|size|slim-bytes" >&2
        exit 2
        ;;
esac
