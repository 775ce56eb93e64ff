#!/usr/bin/env bash
# `make hub`: a try-out of the Dry Lab hub on http://127.0.0.1:8000 with one instructor and
# two residents, module 00 already released. Not a production set-up: one shared password,
# plain http on loopback. docs/deploy.md has the real thing.
#
# As root (the intended way) the accounts are real unix users (instructor, resident1,
# resident2), created if missing, so the exchange's permissions hold as they would in
# production. Without root every server runs as you (SimpleLocalProcessSpawner): the
# residents are then not separated from each other, and nothing is pre-released.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${DRYLAB_HUB_ROOT:-/tmp/drylab-hub}"
mkdir -p "$root"
chmod 755 "$root"

export DRYLAB_HUB_AUTH=shared-password
export DRYLAB_SHARED_PASSWORD="${DRYLAB_SHARED_PASSWORD:-drylab-try-out}"
export DRYLAB_INSTRUCTORS="${DRYLAB_INSTRUCTORS:-instructor}"
export DRYLAB_RESIDENTS="${DRYLAB_RESIDENTS:-resident1,resident2}"
export DRYLAB_EXCHANGE_ROOT="$root/exchange"
export DRYLAB_HUB_STATE_DIR="$root/state"
export DRYLAB_USER_ENV_DIR="$root/user-env"
export DRYLAB_HUB_IP=127.0.0.1 DRYLAB_HUB_PORT="${DRYLAB_HUB_PORT:-8000}"

if [ "$(id -u)" = 0 ]; then
  export DRYLAB_HUB_SPAWNER=local DRYLAB_CREATE_USERS=1
  echo "run-hub: creating the try-out's unix users if missing and releasing module 00 ..."
  python "$here/instructor.py" release-demo
else
  export DRYLAB_HUB_SPAWNER=simple
  echo "run-hub: WARNING: not root, so every server runs as $(id -un): residents are NOT" \
       "separated from each other. Release module 00 from the instructor's Formgrader." >&2
fi

cat <<INFO

  Dry Lab hub try-out: http://127.0.0.1:${DRYLAB_HUB_PORT}/
  password for every account: ${DRYLAB_SHARED_PASSWORD}
  instructor: ${DRYLAB_INSTRUCTORS}   (Nbgrader > Formgrader; course in ~/drylab)
  residents:  ${DRYLAB_RESIDENTS}   (Nbgrader > Assignment List > Fetch 00_orientation)
  state, exchange and logs under ${root}; stop with Ctrl+C

INFO
cd "$root"
exec python -m jupyterhub -f "$here/jupyterhub_config.py"
