#!/usr/bin/env bash
# System packages the signed pledge (PDF) needs, installed once per machine:
#   WeasyPrint's text layout (Pango, HarfBuzz, fontconfig); a CJK font so Chinese renders
#   (Noto Sans/Serif CJK), plus fonts for emoji and Arabic/Hebrew names typed by users;
#   poppler-utils (pdftotext, pdftoppm) for the PDF tests.
# Idempotent: installs only what is missing. Does nothing (and says so) when it is not run
# as root or on a system without apt-get; install the same packages by other means there.
set -euo pipefail

PACKAGES=(
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1
  fonts-noto-cjk fonts-noto-color-emoji fonts-dejavu-core poppler-utils
  chromium chromium-driver  # the web chat's real-browser tests (issue 11), driven by selenium
)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: no apt-get here; please install: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-system-deps: not root; please install: ${missing[*]}" >&2
    exit 0
  fi
else
  SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
