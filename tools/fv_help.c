/*
 * fv_help.c - the help pages of fv's commands (fv_help.h).
 *
 * One table, pages[], in the order `fv help` lists the commands, which is
 * also the order their examples build on each other: init's sets
 * FV_PASSPHRASE and creates shop.fv, customer add's fill it, and so on.
 * Every example must work when copied as written into a shell where the
 * earlier ones have run (tests/test_help.c runs them all, in order, and
 * fails on the first that exits nonzero); enroll's and sync's use the
 * $FV_SERVER and $FV_CODE a reader gets from the team's admin.  Text only:
 * nothing here knows fv's option tables, so a new option needs its line
 * here too.
 */
#include "fv_help.h"

#include <string.h>

static const fvh_page pages[] = {
    {"init",
     "Create a new encrypted store.  The passphrase comes from FV_PASSPHRASE,\n"
     "else it is asked twice on the terminal; it is turned into the key that\n"
     "wraps the store's random database key with Argon2id, whose cost is\n"
     "recorded in the file.  The file must not exist yet.\n",
     "  --kdf-mem MIB      Argon2id memory in MiB, 8 to 1024 (default 64)\n"
     "  --kdf-passes N     Argon2id passes, 1 to 16 (default 3)\n"
     "  --json             print {\"path\": DB, \"ok\": true} on one line\n",
     "  # Create a store; every later example uses this passphrase\n"
     "  $ export FV_PASSPHRASE='demo passphrase'\n"
     "  $ fv init shop.fv\n"
     "  # A cheaper key derivation, for throwaway test stores only\n"
     "  $ fv init scratch.fv --kdf-mem 8 --kdf-passes 1 --json\n"},

    {"customer add",
     "Record a new customer and print its id (a time-ordered UUIDv7).  Only\n"
     "--name is required.  The owner is the acting user (FV_USER, or the\n"
     "enrolled user) unless --owner is given.  budget and decision-chain are\n"
     "confidential: only the roles allowed to read them ever see them.  A name\n"
     "that matches a customer already there (ignoring case, spacing and\n"
     "full-width letters) is warned about on stderr; the customer is added\n"
     "anyway (fv customer merge folds duplicates).\n",
     "  --name NAME             the customer's name (required)\n"
     "  --grade S|A|B           follow-up cadence: S weekly, A fortnightly, B monthly\n"
     "  --stage STAGE           lead, intent, negotiation, won, service or lost\n"
     "  --industry TEXT         --region TEXT    --size TEXT    --source TEXT\n"
     "  --owner USER            the rep who owns it (default: the acting user)\n"
     "  --team TEXT             the owner's team\n"
     "  --needs TEXT            what the customer needs\n"
     "  --intent high|mid|low   --status TEXT    --urgency TEXT\n"
     "  --next-due YYYY-MM-DD   a follow-up date that overrides the grade cadence\n"
     "  --since YYYY-MM-DD      when the cooperation began (fv due lists its anniversaries)\n"
     "  --budget TEXT           confidential\n"
     "  --decision-chain TEXT   confidential\n"
     "  --json                  print {\"id\": ID, \"ok\": true, \"duplicates\": [...]} on\n"
     "                          one line: the customers it may duplicate (table, id,\n"
     "                          field, name)\n",
     "  $ fv customer add shop.fv --name 'Acme Foods' --grade A --stage intent --region North\n"
     "  $ fv customer add shop.fv --name 'Borealis Mills' --grade S --stage lead --budget '120k EUR' --decision-chain 'CFO signs'\n"
     "  $ fv customer add shop.fv --name 'Cedar Retail' --grade B --stage negotiation --json\n"},

    {"customer update",
     "Change some of a customer's fields; the others are left as they are.\n"
     "Give at least one field option.  An empty value clears the field.  Each\n"
     "changed field becomes one change in the outbox, for the next sync.\n",
     "  the options of fv customer add (see fv customer add --help), and\n"
     "  --json                  print {\"id\": ID, \"ok\": true} on one line\n",
     "  # Move the grade A customer on to negotiation\n"
     "  $ fv customer update shop.fv \"$(fv customer list shop.fv --grade A --ids | head -n1)\" --stage negotiation\n"
     "  # An empty value clears a field\n"
     "  $ fv customer update shop.fv \"$(fv customer list shop.fv --grade S --ids | head -n1)\" --budget ''\n"},

    {"customer show",
     "Print one customer, field by field (empty fields are left out).  A field\n"
     "the acting user's role may not read shows as [redacted].\n",
     "  --json             one object: \"id\", every field (null when empty), and\n"
     "                     \"redacted\": the fields that may not be read\n",
     "  $ fv customer show shop.fv \"$(fv customer list shop.fv --ids | head -n1)\"\n"
     "  $ fv customer show shop.fv \"$(fv customer list shop.fv --ids | head -n1)\" --json\n"},

    {"customer list",
     "List the customers the acting user can see, by name, as a table, with\n"
     "optional filters (all of them must match).\n",
     "  --stage STAGE      only customers at this stage\n"
     "  --grade S|A|B      only customers of this grade\n"
     "  --owner USER       only customers this user owns\n"
     "  --ids              print only the ids, one a line (for scripts)\n"
     "  --json             an array of objects, as fv customer show --json\n",
     "  $ fv customer list shop.fv\n"
     "  $ fv customer list shop.fv --stage negotiation --grade A\n"
     "  # Ids only, one a line: for scripts\n"
     "  $ fv customer list shop.fv --ids\n"},

    {"customer delete",
     "Delete a customer.  Deleting leaves a tombstone that syncs to the other\n"
     "replicas: the customer disappears from reads and lists everywhere, and\n"
     "fv customer restore brings it back.\n",
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ fv customer delete shop.fv \"$(fv customer add shop.fv --name 'Duplicate entry')\"\n"},

    {"contact add",
     "Record a contact person of a customer and print its id.  phone, email\n"
     "and im-handle are personal data (pii).  A phone number or e-mail address\n"
     "that matches a contact's already there (\"+86 138-0000-0000\" and\n"
     "\"+8613800000000\" match, as do \"Ana@Example.com\" and \"ana@example.com\")\n"
     "is warned about on stderr; the contact is added anyway.  The match goes\n"
     "through a keyed hash kept beside each value, never through the values.\n",
     "  --customer ID      the customer (required)\n"
     "  --name NAME        the person's name (required)\n"
     "  --title TEXT       job title\n"
     "  --phone PHONE      --email EMAIL      --im-handle TEXT\n"
     "  --birthday MM-DD   personal data too; fv due lists it when it comes round\n"
     "  --json             print {\"id\": ID, \"ok\": true, \"duplicates\": [...]} on one\n"
     "                     line: the contacts it may duplicate (table, id, field,\n"
     "                     name, customer_id)\n",
     "  $ fv contact add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --name 'Li Wei' --title Buyer --phone '+86 138 0000 0000' --email li@example.com\n"},

    {"contact list",
     "List the contacts of one customer, by name.\n",
     "  --customer ID      the customer (required)\n"
     "  --ids              print only the ids, one a line\n"
     "  --json             an array of objects, one per contact\n",
     "  $ fv contact list shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\"\n"
     "  $ fv contact list shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --json\n"},

    {"visit add",
     "Record a visit, call, e-mail or video meeting with a customer and print\n"
     "its id: what was said, what was agreed, and the next action (what, who,\n"
     "by when).  --at defaults to now; any ISO 8601 time is accepted and\n"
     "stored in UTC.\n",
     "  --customer ID                  the customer (required)\n"
     "  --method visit|phone|email|video|other   how (required)\n"
     "  --summary TEXT                 what happened (required)\n"
     "  --at ISO8601                   when (default: now)\n"
     "  --participants TEXT            who was there\n"
     "  --feedback TEXT                what the customer said\n"
     "  --agreement TEXT               what was agreed\n"
     "  --next-action TEXT             the next step\n"
     "  --next-owner USER              who takes it\n"
     "  --next-due YYYY-MM-DD          by when\n"
     "  --lat DEGREES  --lon DEGREES   where\n"
     "  --json                         print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ fv visit add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --method visit --summary 'Trial of line 3' --next-action 'Send quote' --next-owner local --next-due 2026-12-01\n"
     "  # A call in the past, with a time zone (stored in UTC)\n"
     "  $ fv visit add shop.fv --customer \"$(fv customer list shop.fv --grade S --ids | head -n1)\" --method phone --summary 'Price check' --at 2026-03-02T10:00:00+01:00\n"},

    {"visit list",
     "List visits, newest first: all of them, or one customer's.\n",
     "  --customer ID      only this customer's visits\n"
     "  --ids              print only the ids, one a line\n"
     "  --json             an array of objects, one per visit\n",
     "  $ fv visit list shop.fv\n"
     "  $ fv visit list shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --json\n"},

    {"due",
     "List the customers due for a follow-up on or before a date (default:\n"
     "today, UTC), soonest first.  A customer is due on its next-due date when\n"
     "one is set, else on its last visit (or, never visited, the day it was\n"
     "recorded) plus its grade's cadence: S 7 days, A 14, B 30, no grade 30.\n"
     "Lost customers are never due.  REASON says which rule applied.  Then the\n"
     "important dates of that day and the next three (--days): contacts'\n"
     "birthdays and customers' cooperation anniversaries (customer.since).\n",
     "  --on YYYY-MM-DD    the date (default: today)\n"
     "  --days N           important dates up to N days after it (default 3)\n"
     "  --ids              print only the ids of the customers due, one a line\n"
     "  --json             an array: customer objects with \"kind\": \"follow-up\",\n"
     "                     \"due\" and \"reason\", then the dates (\"kind\": \"birthday\"\n"
     "                     or \"anniversary\", date, in_days, name, customer, years)\n",
     "  $ fv due shop.fv\n"
     "  $ fv due shop.fv --on 2030-01-01 --json\n"
     "  # With the birthdays and anniversaries of the coming week\n"
     "  $ fv due shop.fv --days 7\n"},

    {"passwd",
     "Change the store's passphrase.  Only the wrapping of the database key\n"
     "changes; no page is rewritten (fv rekey does that).  The new passphrase\n"
     "comes from FV_NEW_PASSPHRASE, else it is asked twice on the terminal.\n"
     "Crash-safe: after a crash either passphrase opens the store.\n",
     "  --json             print {\"path\": DB, \"ok\": true} on one line\n",
     "  $ FV_NEW_PASSPHRASE='new demo passphrase' fv passwd shop.fv\n"
     "  # Later commands need the new one\n"
     "  $ export FV_PASSPHRASE='new demo passphrase'\n"},

    {"rekey",
     "Give the store a new random database key and rewrite every page under\n"
     "it (for instance after a copy of the file may have leaked with its old\n"
     "passphrase).  One transaction: an interrupted rekey is finished or rolled\n"
     "back on the next open.\n",
     "  --json             print {\"path\": DB, \"ok\": true} on one line\n",
     "  $ fv rekey shop.fv\n"},

    {"check",
     "Authenticate every page of the store and every frame of its WAL, then\n"
     "run SQLite's integrity check.  Exit 4 names the first page that fails:\n"
     "the file was damaged or tampered with.\n",
     "  --json             print {\"path\": DB, \"ok\": true} on one line\n",
     "  $ fv check shop.fv\n"
     "  $ fv check shop.fv --json\n"},

    {"customer restore",
     "Undo the deletion of a customer: it is live again, with its fields as\n"
     "they were.  The restore syncs like any change and wins over the delete\n"
     "on every replica, since it is later.\n",
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ id=$(fv customer add shop.fv --name 'Closed branch')\n"
     "  $ fv customer delete shop.fv \"$id\"\n"
     "  $ fv customer restore shop.fv \"$id\"\n"},

    {"contact delete",
     "Delete a contact (a tombstone that syncs, like fv customer delete).\n",
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ fv contact delete shop.fv \"$(fv contact list shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --ids | head -n1)\"\n"},

    {"visit delete",
     "Delete a visit (a tombstone that syncs, like fv customer delete).\n",
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ fv visit delete shop.fv \"$(fv visit list shop.fv --ids | tail -n1)\"\n"},

    {"changes export",
     "Write the changes waiting in the outbox (or, with --all, the current\n"
     "version of every field of every record, deleted ones as tombstones) as\n"
     "one change set file, for another store to import without a server.\n"
     "The file is written whole or not at all.  Prints how many changes.\n",
     "  --all              the full state, not only the pending changes\n"
     "  --json             print {\"file\": FILE, \"count\": N} on one line\n",
     "  # The pending changes\n"
     "  $ fv changes export shop.fv outbox.fvc\n"
     "  # Everything: enough to seed another store\n"
     "  $ fv changes export shop.fv full.fvc --all --json\n"},

    {"changes import",
     "Apply a change set file (from fv changes export) in one transaction.\n"
     "Each field is merged, last writer wins; an overwritten concurrent edit\n"
     "is kept in the conflict log (fv conflicts).  Importing a set twice\n"
     "changes nothing the second time.  Prints what was applied.\n",
     "  --json             print {\"received\": N, \"applied\": N, \"known\": N,\n"
     "                     \"conflicts\": N} on one line\n",
     "  $ fv init copy.fv\n"
     "  $ fv changes import copy.fv full.fvc\n"
     "  # Again: everything is already known\n"
     "  $ fv changes import copy.fv full.fvc --json\n"},

    {"conflicts resolve",
     "Settle a conflict: the value kept (mine: the one this store held when\n"
     "the conflict was found; theirs: the one that arrived) is written as a new\n"
     "change, later than both, so every replica converges on it; the conflict\n"
     "is marked resolved here, and on the others when the change reaches them.\n",
     "  --keep mine|theirs   which value to keep (required)\n"
     "  --json               print {\"id\": CONFLICT_ID, \"ok\": true} on one line\n",
     "  # Two stores change the same customer's stage, then shop.fv gets copy.fv's change\n"
     "  $ id=$(fv customer list shop.fv --grade A --ids | head -n1)\n"
     "  $ fv customer update copy.fv \"$id\" --stage won\n"
     "  $ fv customer update shop.fv \"$id\" --stage lost\n"
     "  $ fv changes export copy.fv copy.fvc && fv changes import shop.fv copy.fvc\n"
     "  $ fv conflicts resolve shop.fv \"$(fv conflicts shop.fv --ids | head -n1)\" --keep theirs\n"},

    {"conflicts",
     "List the conflict log: concurrent edits of the same field, both values,\n"
     "and which one is current (\"<- current\").  Unresolved ones only, unless\n"
     "--all.\n",
     "  --all              resolved conflicts too\n"
     "  --ids              print only the conflict ids, one a line\n"
     "  --json             an array of objects: id, table, row_id, field, mine,\n"
     "                     theirs, their clocks and devices, winner, resolved\n",
     "  $ fv conflicts shop.fv\n"
     "  $ fv conflicts shop.fv --all --json\n"},

    {"state-hash",
     "Print a hash of every visible record and field (not of sync metadata):\n"
     "two replicas that hold the same data print the same hash.\n",
     "  --json             print {\"state_hash\": HEX, \"ok\": true} on one line\n",
     "  $ fv state-hash shop.fv\n"
     "  # After shop.fv's full state reaches copy.fv, both hold the same data\n"
     "  $ fv changes export shop.fv all.fvc --all && fv changes import copy.fv all.fvc\n"
     "  $ test \"$(fv state-hash shop.fv)\" = \"$(fv state-hash copy.fv)\" && echo same\n"},

    {"enroll",
     "Enrol a store with fvd, once, using a one-time code from the team's\n"
     "admin (`fvd admin add-user NAME --role ROLE --team TEAM` prints it).  The\n"
     "device gets its identity key pair, the server's URL is kept in the store,\n"
     "and from then on the user's role decides what this store shows: rows\n"
     "outside the user's scope are not there, fields the role may not read are\n"
     "redacted.  Enrol a new store: records already in it are kept only if the\n"
     "user may see them.\n",
     "  --server URL       fvd's address, http:// or https:// (required)\n"
     "  --code CODE        the one-time enrolment code (required)\n"
     "  --json             print {\"server\", \"device_id\", \"user\", \"role\",\n"
     "                     \"team\"} on one line\n",
     "  # FV_SERVER and FV_CODE come from the team's admin\n"
     "  $ fv init field.fv\n"
     "  $ fv enroll field.fv --server \"$FV_SERVER\" --code \"$FV_CODE\"\n"},

    {"sync",
     "Push the outbox to fvd and pull what others changed, until both are\n"
     "drained or the time box ends; an interrupted sync resumes where it\n"
     "stopped.  On a terminal a progress bar on stderr shows the changes and\n"
     "bytes sent and received; otherwise one summary line is printed.  Exit 6\n"
     "when the time box ended with work left (run it again).\n",
     "  --server URL       another address for the same fvd (default: the\n"
     "                     enrolment's)\n"
     "  --max-seconds N    stop at the first batch boundary after N seconds\n"
     "  --json             {\"pushed\", \"pulled\", \"conflicts\", \"rejected\",\n"
     "                     \"drained\"}\n",
     "  $ fv customer add field.fv --name 'Delta Foods' --grade A\n"
     "  $ fv sync field.fv\n"
     "  $ fv sync field.fv --max-seconds 30 --json\n"},

    {"status",
     "Show the store's sync state: enrolment (server, user, role, team), the\n"
     "device id, changes waiting to be pushed, the last complete sync and the\n"
     "last sync's error.\n",
     "  --json             one object: enrolled, server, device_id, user, role,\n"
     "                     team, pending_changes, pull_cursor, last_sync, last_error\n",
     "  $ fv status field.fv\n"
     "  $ fv status shop.fv --json\n"},

    {"whoami",
     "Show who this store acts as: the enrolled user, role and team, the\n"
     "version of the access policy in force, and the field keys held (by id;\n"
     "never key material).  A store never enrolled has full rights over its\n"
     "own data.\n",
     "  --json             one object: enrolled, user, role, team,\n"
     "                     policy_version, field_keys\n",
     "  $ fv whoami field.fv\n"
     "  $ fv whoami shop.fv --json\n"},

    {"report",
     "A month's report, computed on this device from what its user can see:\n"
     "the customers by stage (the pipeline) and by grade now; conversion, the\n"
     "customers that moved from intent straight to won during the month, as a\n"
     "count and as a share of the customers that were in intent at any time\n"
     "of the month; churn, the customers that moved to lost during the month;\n"
     "visits per owner (the customer's) per ISO week of the month; and the\n"
     "follow-ups overdue (as fv due: next-due date, else grade cadence) today,\n"
     "or at the end of a past month.  Stage changes are counted from the\n"
     "store's history as this device received them.  On a terminal the\n"
     "pipeline and the weekly visits are drawn as bar charts.\n",
     "  --month YYYY-MM    the month, UTC (default: the current one)\n"
     "  --json             one object: month, pipeline, grades, conversion,\n"
     "                     churn, visits (weeks, by_owner), overdue\n",
     "  $ fv report shop.fv\n"
     "  $ fv report shop.fv --month 2026-03 --json\n"},

    /* fv import / fv export (tools/fv_csv.c) */
    {"import customers",
     "Add customers from a UTF-8 CSV file (a spreadsheet saved as CSV): a\n"
     "header row naming the fields (field names such as decision_chain, or fv's\n"
     "option names such as decision-chain), then one customer a row.  Dates in\n"
     "common forms and enum labels are normalised.  Every row is checked as fv\n"
     "customer add would; the good rows go in one transaction.  A row whose\n"
     "name matches a customer already there (or an earlier row) is reported as\n"
     "a duplicate and skipped; a row that fails a check is reported as\n"
     "rejected, with its line, and makes the exit status 1.\n",
     "  --map COL=FIELD    read column COL as FIELD (repeatable); --map COL= skips COL\n"
     "  --dry-run          check and report every row, write nothing\n"
     "  --json             one object: read, imported, duplicates and rejected\n"
     "                     (each a list of {line, reason}), dry_run\n",
     "  $ printf 'name,grade,stage,region\\nDelta Foods,A,intent,South\\nEcho Trading,S,lead,East\\n' > customers.csv\n"
     "  $ fv import customers shop.fv customers.csv --dry-run\n"
     "  $ fv import customers shop.fv customers.csv --json\n"
     "  # A CRM's own column names, mapped to fields\n"
     "  $ printf 'Company,Tier\\nFoxtrot Metals,B\\n' > crm.csv && fv import customers shop.fv crm.csv --map Company=name --map Tier=grade\n"},

    {"import contacts",
     "Add contacts from a UTF-8 CSV file, as fv import customers does.  The\n"
     "customer column ('customer' or 'customer_id') holds the customer's id or\n"
     "its exact name; a name that several customers share is rejected.\n",
     "  --map COL=FIELD    read column COL as FIELD (repeatable); --map COL= skips COL\n"
     "  --dry-run          check and report every row, write nothing\n"
     "  --json             as fv import customers --json\n",
     "  $ printf 'customer,name,title,phone\\nDelta Foods,Zhang Min,Buyer,+86 137 0000 0000\\n' > contacts.csv\n"
     "  $ fv import contacts shop.fv contacts.csv\n"},

    {"import visits",
     "Add visits from a UTF-8 CSV file, as fv import customers does.  The\n"
     "customer column holds the customer's id or exact name; method and\n"
     "summary are required, as for fv visit add.\n",
     "  --map COL=FIELD    read column COL as FIELD (repeatable); --map COL= skips COL\n"
     "  --dry-run          check and report every row, write nothing\n"
     "  --json             as fv import customers --json\n",
     "  $ printf 'customer,at,method,summary\\nDelta Foods,2026-03-05T10:00:00Z,visit,First meeting\\n' > visits.csv\n"
     "  $ fv import visits shop.fv visits.csv --json\n"},

    {"export customers",
     "Write the customers the acting user may read as CSV (a header row of\n"
     "field names, then one customer a row; redacted fields are left empty),\n"
     "to FILE (written whole, then renamed into place) or to stdout.\n",
     "  --csv              the format (required)\n"
     "  --json             with FILE: print {\"file\": FILE, \"count\": N}\n",
     "  $ fv export customers shop.fv --csv customers-export.csv\n"
     "  # Without FILE: to stdout\n"
     "  $ fv export customers shop.fv --csv | sed -n 1,3p\n"},

    {"export contacts",
     "Write the contacts the acting user may read as CSV, to FILE or stdout\n"
     "(as fv export customers).\n",
     "  --csv              the format (required)\n"
     "  --json             with FILE: print {\"file\": FILE, \"count\": N}\n",
     "  $ fv export contacts shop.fv --csv contacts-export.csv\n"},

    {"export visits",
     "Write the visits the acting user may read as CSV, to FILE or stdout\n"
     "(as fv export customers).\n",
     "  --csv              the format (required)\n"
     "  --json             with FILE: print {\"file\": FILE, \"count\": N}\n",
     "  $ fv export visits shop.fv --csv visits-export.csv --json\n"},

    /* workflows (issue 9): the grade review, complaints, important dates */
    {"contact update",
     "Change some of a contact's fields; the others are left as they are.\n"
     "Give at least one field option.  An empty value clears the field.  A\n"
     "birthday is a day of the year, MM-DD (02-29 is one; 02-30 is refused):\n"
     "fv due lists it in the three days before it comes round.\n",
     "  the options of fv contact add (see fv contact add --help), and\n"
     "  --birthday MM-DD   the contact's birthday (personal data, like the phone)\n"
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ k=$(fv contact add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --name 'Wang Fang' --title Buyer)\n"
     "  $ fv contact update shop.fv \"$k\" --birthday 07-14 --title 'Head buyer'\n"
     "  # An empty value clears the birthday again\n"
     "  $ fv contact update shop.fv \"$k\" --birthday '' --json\n"},

    {"contact show",
     "Print one contact, field by field (empty fields are left out).  A field\n"
     "the acting user's role may not read shows as [redacted].\n",
     "  --json             one object: \"id\", every field (null when empty), and\n"
     "                     \"redacted\": the fields that may not be read\n",
     "  $ k=$(fv contact add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --name 'Chen Jie' --birthday 02-29)\n"
     "  $ fv contact show shop.fv \"$k\"\n"
     "  $ fv contact show shop.fv \"$k\" --json\n"},

    {"customer grade",
     "The grade review.  With --propose, the acting user proposes a grade\n"
     "(offline if need be): the proposal syncs and stays \"proposed\", visible to\n"
     "everyone who sees the customer, while the grade does not change.  A lead\n"
     "or director then approves it (the grade becomes the proposed one, and\n"
     "fv due's cadence follows it) or rejects it (the grade stays), offline\n"
     "too; the decision syncs like any change.  In an enrolled store only the\n"
     "roles lead and director decide and change a grade directly (a rep's fv\n"
     "customer update --grade is refused: exit 5); a store never enrolled has\n"
     "every right.  Without an option: the customer's grade and its latest\n"
     "proposal.\n",
     "  --propose S|A|B    propose this grade (replaces a proposal still waiting)\n"
     "  --approve          approve the waiting proposal (lead, director)\n"
     "  --reject           reject the waiting proposal (lead, director)\n"
     "  --json             one object: id, name, grade, state (none, proposed,\n"
     "                     approved, rejected), proposed, proposed_by,\n"
     "                     proposed_at, decided_by, decided_at\n",
     "  $ id=$(fv customer add shop.fv --name 'Gamma Tools' --grade B)\n"
     "  $ fv customer grade shop.fv \"$id\" --propose A\n"
     "  $ fv customer grade shop.fv \"$id\"\n"
     "  $ fv customer grade shop.fv \"$id\" --approve\n"
     "  # A later proposal, rejected: the grade stays A\n"
     "  $ fv customer grade shop.fv \"$id\" --propose S --json\n"
     "  $ fv customer grade shop.fv \"$id\" --reject\n"},

    {"customer proposals",
     "List the customers whose grade proposal waits for a decision, latest\n"
     "proposal first (with --all, the decided ones too): what a lead reviews.\n",
     "  --all              decided proposals too\n"
     "  --ids              print only the customers' ids, one a line\n"
     "  --json             an array of objects, as fv customer grade --json\n",
     "  $ fv customer grade shop.fv \"$(fv customer add shop.fv --name 'Helix Labs' --grade A)\" --propose S\n"
     "  $ fv customer proposals shop.fv\n"
     "  $ fv customer proposals shop.fv --all --json\n"},

    {"complaint add",
     "Register a customer's complaint and print its id.  It is received now\n"
     "(or at --received, for one logged after the call) and gets its deadlines\n"
     "from then, by this store's policy for its urgency (fv complaint\n"
     "deadlines; by default acknowledge within 1 hour, respond within 24,\n"
     "resolve within 48).  The deadlines travel with the complaint: every\n"
     "device shows the same ones.\n",
     "  --customer ID      the customer (required)\n"
     "  --summary TEXT     what the customer complains about (required)\n"
     "  --urgency normal|urgent|critical   (default normal)\n"
     "  --channel TEXT     how it came in: phone, e-mail, visit...\n"
     "  --received ISO8601 when it was received (default: now)\n"
     "  --json             print {\"id\": ID, \"ok\": true} on one line\n",
     "  $ cid=$(fv customer add shop.fv --name 'Ion Hotels' --grade A)\n"
     "  $ fv complaint add shop.fv --customer \"$cid\" --summary 'Late delivery of order 1182' --urgency urgent --channel phone\n"
     "  # Logged after the fact: its deadlines count from when it was received\n"
     "  $ fv complaint add shop.fv --customer \"$cid\" --summary 'Wrong invoice' --received 2026-01-05T09:30:00Z --json\n"},

    {"complaint ack",
     "Acknowledge a complaint: stamps who and when (and --note), once.  The\n"
     "steps are acknowledge, respond, resolve; one may be skipped, none undone:\n"
     "a complaint that is acknowledged already, or further, is refused.\n",
     "  --note TEXT        what was said or done\n"
     "  --json             print {\"id\": ID, \"status\": \"acknowledged\", \"ok\": true}\n",
     "  $ k=$(fv complaint add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --summary 'Damaged pallet')\n"
     "  $ fv complaint ack shop.fv \"$k\" --note 'Called back; a driver collects it tomorrow'\n"},

    {"complaint respond",
     "Record the response to a complaint: stamps who and when (and --note),\n"
     "once.  A complaint that has a response already, or is resolved, is\n"
     "refused; one not yet acknowledged may be responded to directly.\n",
     "  --note TEXT        the response\n"
     "  --json             print {\"id\": ID, \"status\": \"responded\", \"ok\": true}\n",
     "  $ k=$(fv complaint add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --summary 'Missing manual')\n"
     "  $ fv complaint respond shop.fv \"$k\" --note 'Manual e-mailed' --json\n"},

    {"complaint resolve",
     "Close a complaint as resolved: stamps who and when (and --note), once.\n"
     "The status only moves forward, also across devices: a resolution and a\n"
     "late acknowledgement made elsewhere both sync, and every device shows\n"
     "the complaint resolved.\n",
     "  --note TEXT        how it was resolved\n"
     "  --json             print {\"id\": ID, \"status\": \"resolved\", \"ok\": true}\n",
     "  $ k=$(fv complaint add shop.fv --customer \"$(fv customer list shop.fv --ids | head -n1)\" --summary 'Noisy motor')\n"
     "  $ fv complaint resolve shop.fv \"$k\" --note 'Motor replaced'\n"
     "  # Going back is refused\n"
     "  $ fv complaint ack shop.fv \"$k\" || echo 'refused: it is resolved'\n"},

    {"complaint show",
     "Print one complaint, field by field, then its status and each step's\n"
     "deadline: done (and when), or the time left, or how long it is overdue.\n",
     "  --json             one object: \"id\", every field, and status, next_step,\n"
     "                     due_at, seconds_left (negative: overdue), overdue\n",
     "  $ fv complaint show shop.fv \"$(fv complaints shop.fv --all --ids | head -n1)\"\n"
     "  $ fv complaint show shop.fv \"$(fv complaints shop.fv --all --ids | head -n1)\" --json\n"},

    {"complaints",
     "List the complaints not resolved yet, the next deadline first: their\n"
     "status, the next step and its deadline, and the time left or how long it\n"
     "is overdue (exactly at the deadline is not overdue yet).\n",
     "  --overdue          only those past their next deadline\n"
     "  --all              resolved ones too\n"
     "  --ids              print only the ids, one a line\n"
     "  --json             an array of objects, as fv complaint show --json, with\n"
     "                     \"customer\" (the customer's name)\n",
     "  $ fv complaints shop.fv\n"
     "  $ fv complaints shop.fv --overdue --json\n"
     "  $ fv complaints shop.fv --all\n"},

    {"complaint deadlines",
     "Show this store's complaint deadlines (the default, and each urgency's),\n"
     "or set them: the complaints it registers from then on get them (each\n"
     "complaint keeps the deadlines it was given).  An urgency without its own\n"
     "has the default's.  Durations: 45s, 30m, 1h, 24h, 2d, 1h30m; acknowledge\n"
     "<= respond <= resolve.\n",
     "  --urgency U        normal, urgent or critical: set that urgency's own\n"
     "                     deadlines (without it: the default)\n"
     "  --ack D            time to acknowledge\n"
     "  --respond D        time to respond\n"
     "  --resolve D        time to resolve\n"
     "  --drop             with --urgency: drop that urgency's own deadlines\n"
     "  --json             one object: default, normal, urgent, critical, each with\n"
     "                     ack_seconds, respond_seconds, resolve_seconds\n",
     "  $ fv complaint deadlines shop.fv\n"
     "  # Critical complaints: acknowledge within 15 minutes, respond within 4 hours, resolve within a day\n"
     "  $ fv complaint deadlines shop.fv --urgency critical --ack 15m --respond 4h --resolve 24h\n"
     "  $ fv complaint deadlines shop.fv --urgency critical --drop --json\n"},

    /* duplicates, merge, the read audit (tools/fv_dedup_audit.c) */
    {"customer merge",
     "Fold customer OTHER_ID, a duplicate, into KEEP_ID in one transaction.\n"
     "KEEP's fields win; each field KEEP leaves empty takes OTHER's value (not\n"
     "the owner or team, and only fields you may write).  OTHER's contacts,\n"
     "visits and complaints move to KEEP; OTHER is deleted and records that it\n"
     "was merged into KEEP, so fv customer show OTHER_ID names KEEP.  It all\n"
     "syncs like any edit: a device that still adds a visit to OTHER (offline,\n"
     "say) moves it to KEEP when the merge reaches it, and every device ends\n"
     "with one customer.\n",
     "  --json             print {\"keep\", \"other\", \"fields_filled\", \"contacts\",\n"
     "                     \"visits\", \"others\", \"ok\"} on one line\n",
     "  # The same customer recorded twice: the second add warns\n"
     "  $ keep=$(fv customer add shop.fv --name 'Golf Supplies' --grade A)\n"
     "  $ other=$(fv customer add shop.fv --name 'GOLF  supplies' --region West)\n"
     "  $ fv visit add shop.fv --customer \"$other\" --method phone --summary 'Asked for a catalogue'\n"
     "  $ fv customer merge shop.fv \"$keep\" \"$other\"\n"
     "  $ fv visit list shop.fv --customer \"$keep\"\n"
     "  $ fv customer merge shop.fv \"$keep\" \"$(fv customer add shop.fv --name 'golf supplies')\" --json\n"},

    {"audit list",
     "List the read audit: every time a confidential field (budget, decision\n"
     "chain) was handed to someone through the library (fv customer show, a\n"
     "list, an app), who read which field of which record, when, on which\n"
     "device.  Entries made on this device and those synced to it (from the\n"
     "devices whose users see the same customers); each names the field, never\n"
     "the value.  One entry per record and field each time a record is read.\n",
     "  --json             an array of objects: id, at, at_ms, user, table,\n"
     "                     row_id, field, customer_id, device, position,\n"
     "                     prev_hash, hash, deleted\n",
     "  # Reading a confidential field is what gets audited\n"
     "  $ id=$(fv customer add shop.fv --name 'Hotel Indigo' --budget '80k EUR')\n"
     "  $ fv customer show shop.fv \"$id\" > /dev/null\n"
     "  $ fv audit list shop.fv\n"
     "  $ fv audit list shop.fv --json\n"},

    {"audit verify",
     "Check the read audit.  Each device's entries form a hash chain: every\n"
     "entry holds its position, the hash of the entry before it and its own\n"
     "hash over its contents.  verify recomputes every chain and exits 1\n"
     "naming each entry (id and position) that was edited, removed or deleted\n"
     "since it was written (this device's chain is also held to the end it\n"
     "recorded, so a removed last entry shows).  A store that receives only\n"
     "some customers' entries counts as removed only those whose changes it\n"
     "held.\n",
     "  --json             one object: problems (kind, id, device, position,\n"
     "                     detail), entries, devices, ok\n",
     "  $ fv audit verify shop.fv\n"
     "  $ fv audit verify shop.fv --json\n"},
};

const fvh_page *fvh_find(const char *words)
{
    if (words == NULL) return NULL;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strcmp(pages[i].words, words) == 0) return &pages[i];
    return NULL;
}

int fvh_print(FILE *f, const char *words, const char *synopsis, const char *summary)
{
    const fvh_page *p = fvh_find(words);
    fprintf(f, "usage: fv %s\n\n", synopsis);
    if (p == NULL) {
        fprintf(f, "%s\n", summary);
        return -1;
    }
    fputs(p->description, f);
    if (p->options != NULL) fprintf(f, "\nOptions:\n%s", p->options);
    fprintf(f, "\nExamples:\n%s", p->examples);
    return 0;
}
