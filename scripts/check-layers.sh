#!/usr/bin/env bash
# Fails when a module of the goplug library imports from a layer it must
# not see (ARCHITECTURE.md has the picture). From the bottom:
#   protocol/        pure: imports nothing else of the crate
#   error.rs         protocol only
#   sync.rs, sys/, yamux/   protocol, error, sync, sys
#   transport/       the above and yamux
#   grpc/, netrpc/, log/    the above and transport
#   host/, plugin/   siblings: neither imports the other, nor testing
#   testing.rs       the only module that uses both sides
# A `crate::X` (or `$crate::X`) path in code counts; comments do not.
set -euo pipefail
cd "$(dirname "$0")/../goplug/src"

# layer: directory or file, then the crate modules it may use
rules=(
    "protocol/:protocol"
    "error.rs:protocol error"
    "sync.rs:sync"
    "sys/:protocol error sync sys"
    "yamux/:protocol error sync sys yamux"
    "transport/:protocol error sync sys yamux transport"
    "netrpc/:protocol error sync sys yamux transport netrpc gob_struct"
    "grpc/:protocol error sync sys yamux transport grpc"
    "log/:protocol error log"
    "host/:protocol error sync sys yamux transport grpc netrpc log host grpc_client"
    "plugin/:protocol error sync sys yamux transport grpc netrpc log plugin"
)

status=0
for rule in "${rules[@]}"; do
    layer=${rule%%:*}
    allowed=" ${rule#*:} "
    [[ -e $layer ]] || { echo "check-layers: $layer does not exist (update the rules)" >&2; exit 2; }
    # Every crate module named by a path outside comments.
    while IFS=: read -r file line module; do
        if [[ $allowed != *" $module "* ]]; then
            echo "goplug/src/$file:$line: $layer must not use crate::$module" >&2
            status=1
        fi
    done < <(grep -rnHE --include='*.rs' '(^|[^/])\bcrate::[a-z_]+' "$layer" \
        | grep -vE '^[^:]+:[0-9]+:\s*//' \
        | sed -E 's#//.*$##' \
        | grep -oE '^[^:]+:[0-9]+:|crate::[a-z_]+' \
        | awk '/:$/ { loc = $0; next } { sub("crate::", ""); print loc $0 }')
    # Intra-doc links count too: a link into a sibling breaks the docs of
    # a build with only one side (`[X]: crate::host::X` in plugin/).
    while IFS=: read -r file line module; do
        if [[ $allowed != *" $module "* ]]; then
            echo "goplug/src/$file:$line: $layer must not link to crate::$module in its docs" >&2
            status=1
        fi
    done < <(grep -rnHoE --include='*.rs' '^\s*//[/!].*\]: *crate::[a-z_]+' "$layer" \
        | sed -E 's#^([^:]+:[0-9]+):.*crate::([a-z_]+)$#\1:\2#')
done

# Grouped paths (`crate::{a, b}`) would hide a module from the check above.
if grep -rnE --include='*.rs' '\bcrate::\{' . >&2; then
    echo "check-layers: import each crate module on its own line (crate::{..} hides it from this check)" >&2
    status=1
fi

# Large files are split by concept; tests.rs files are test code.
while read -r lines file; do
    [[ $file == total ]] && continue
    [[ $file == */tests.rs ]] && continue
    if (( lines > 800 )); then
        echo "goplug/src/${file#./}: $lines lines (library files stay under 800)" >&2
        status=1
    fi
done < <(find . -name '*.rs' -print0 | xargs -0 wc -l)

if (( status == 0 )); then
    echo "check-layers: ok"
fi
exit $status
