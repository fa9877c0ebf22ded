#!/bin/bash
# Regenerates PublicApi.txt from the built assemblies after a deliberate change of the public surface:
# runs the API test (which writes PublicApi.received.txt beside PublicApi.txt when they differ), accepts it, shows the diff.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dotnet build "$root/tests/FeatureTransfer.Tests" -c Release >/dev/null 2>&1
dotnet test "$root/tests/FeatureTransfer.Tests" -c Release --no-build --filter "FullyQualifiedName~PublicApiTests.Public_surface" >/dev/null 2>&1 || true
if [ -f "$here/PublicApi.received.txt" ]; then
    mv "$here/PublicApi.received.txt" "$here/PublicApi.txt"
    echo "PublicApi.txt updated; review: git diff -- $here/PublicApi.txt"
else
    echo "PublicApi.txt is up to date"
fi
