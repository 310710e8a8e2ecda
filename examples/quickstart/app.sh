#!/bin/sh
# A stand-in app: it reads its secrets from files, as inject arranges.
echo "app: DB_PASSWORD_FILE=$DB_PASSWORD_FILE"
echo "app: the database password is $(wc -c < "$DB_PASSWORD_FILE") bytes long, read from that file"
echo "app: STRIPE_KEY_FILE=$STRIPE_KEY_FILE"
echo "app: my environment holds no secret value: $(env | grep -c dev-only) matches"
echo "app: files in $(dirname "$DB_PASSWORD_FILE"):"
ls -l "$(dirname "$DB_PASSWORD_FILE")" | tail -n +2
echo "app: app.conf has $(grep -c url "$(dirname "$DB_PASSWORD_FILE")/app.conf") database url rendered from the template"
