#!/usr/bin/env bash
# Translation workflow (see README "Translations"):
#   scripts/i18n.sh extract   # refresh locales/messages.pot from the code
#   scripts/i18n.sh update    # merge the template into every .po
#   scripts/i18n.sh compile   # build the .mo files that ship with the package
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  extract) pybabel extract -F babel.cfg -k _:1,1t -k _:1,2 -k __ -k N_ --no-location --sort-output \
             --project=zicha --copyright-holder="Zicha developers" --no-wrap -o locales/messages.pot . ;;
  update)  pybabel update -d locales -D messages -i locales/messages.pot --no-fuzzy-matching --ignore-obsolete --no-wrap ;;
  compile) pybabel compile -d locales -D messages --statistics ;;
  all)     "$0" extract && "$0" update && "$0" compile ;;
  *) echo "usage: $0 [extract|update|compile|all]" >&2; exit 2 ;;
esac
