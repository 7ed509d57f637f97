#!/bin/sh
# A cron job on a null client, as cron runs them: build a report and hand it to sendmail -t, which
# takes the recipients from the To:/Cc:/Bcc: headers. The null client queues it and relays it through
# the smart host; nothing here knows where the mail server is.
#   crontab:  15 6 * * *  CARTERO_CONFIG=/etc/cartero/cartero.yaml /usr/local/bin/cron-daily-report.sh
# CARTERO is the command to run (default: cartero on $PATH; the lab test sets it to the repository's bin).
set -eu
CARTERO=${CARTERO:-cartero}
HOST=$(hostname)
REPORT_ID=${REPORT_ID:-$(date +%s)}
{
  printf 'From: cron@host1.example.org\n'
  printf 'To: root@example.org\n'
  printf 'Subject: daily report %s\n' "$REPORT_ID"
  printf 'X-Report-Id: %s\n' "$REPORT_ID"
  printf '\n'
  printf 'Daily report from %s at %s\n' "$HOST" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'disk usage:\n'
  df -h / 2>/dev/null | tail -n 1 || true
} | $CARTERO sendmail -t -i
