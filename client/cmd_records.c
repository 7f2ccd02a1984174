/* cmd_records.c - `branchsync put`, `get` and `delete`: one record at a
 * time. Writes go through capture, so each becomes one signed change set in
 * the outbox in the same transaction. Not for bulk input (cmd_import.c) nor
 * for free-form reading (cmd_query.c). */
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "commands.h"
#include "identity.h"
#include "mem.h"
#include "merge.h"
#include "records.h"
#include "replica.h"
#include "schema.h"

static const char put_usage[] =
	"usage: branchsync put --db FILE TABLE [--id ID] COLUMN=VALUE...\n\n"
	"Without --id, adds a new record to TABLE and prints its new id; with "
	"--id,\nchanges only the named columns of record ID and prints ID. "
	"Values are\nchecked against the schema (see docs/CLI.md); an empty "
	"VALUE clears an\noptional column.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --id ID     the record to change\n\n"
	"A new record goes to the branch given as branch_id=ID, else the "
	"branch this\ndevice is enrolled for, else the replica's default "
	"branch. A new row of\n'branches' takes branch_id=ID as its id.\n";

static const char get_usage[] =
	"usage: branchsync get --db FILE TABLE ID [--json]\n\n"
	"Prints record ID of TABLE, one 'column: value' line per column, or "
	"with\n--json one object with every column (null for an empty one).\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --json      print JSON\n";

static const char delete_usage[] =
	"usage: branchsync delete --db FILE TABLE ID\n\n"
	"Deletes record ID of TABLE. A deleted record stays deleted: its id "
	"can never\nbe written again, on any replica.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n";

/* Finds TABLE or sets e. */
static const struct schema_table *find_table(const char *name, struct err *e)
{
	const struct schema_table *t = schema_table_find(name);
	char msg[sizeof e->msg];

	if (!t) {
		schema_unknown_table_msg(name, msg, sizeof msg);
		err_set(e, ERR_INVALID, "%s", msg);
	}
	return t;
}

static int check_id(const char *id, struct err *e)
{
	if (schema_id_valid(id))
		return 0;
	err_set(e, ERR_INVALID, "that is not a valid record id: ids are 1 to "
		"%d characters from a-z, A-Z, 0-9, '_', '.', ':' and '-'",
		SCHEMA_ID_MAX);
	return -1;
}

/* Reports a row that is not there: deleted (a tombstone in `branch`, when
 * a branch is known) or never written here. `writing` says whether the
 * command meant to change it. Always returns -1. */
static int report_missing(struct replica *r, const struct schema_table *t,
			  const char *id, const char *branch, int writing,
			  struct err *e)
{
	struct merge *m = NULL;
	int deleted = 0;

	if (branch) {
		if (merge_new(r->db, &m, e))
			return -1;
		deleted = merge_is_deleted(m, t->name, id, branch, e);
		merge_free(m);
		if (deleted < 0)
			return -1;
	}
	if (deleted && writing)
		err_set(e, ERR_INVALID, "record %s in table '%s' was deleted; "
			"a deleted record cannot be written again", id,
			t->name);
	else if (deleted)
		err_set(e, ERR_INVALID, "record %s in table '%s' was deleted",
			id, t->name);
	else
		err_set(e, ERR_INVALID, "no row %s in table '%s'; look the id "
			"up with 'branchsync query'", id, t->name);
	return -1;
}

/* Parses COLUMN=VALUE arguments into row. */
static int put_pairs(const struct cli_command *cmd, char **args, int n,
		     struct records_row *row, struct err *e)
{
	int i;

	for (i = 0; i < n; i++) {
		char *eq = strchr(args[i], '=');

		if (!eq || eq == args[i])
			return cli_usage(cmd, e, "'%.40s' is not COLUMN=VALUE",
					 args[i]);
		*eq = '\0';
		if (strcmp(args[i], "id") == 0) {
			*eq = '=';
			return cli_usage(cmd, e, "the id is not a column to set; "
					 "use --id ID to change a record");
		}
		if (records_row_set(row, args[i], eq + 1, strlen(eq + 1), e)) {
			*eq = '=';
			return -1;
		}
		*eq = '=';
	}
	return 0;
}

/* The insert half of put: chooses the id and branch, checks policy and
 * tombstones, writes. *id_out gets the new id. */
static int put_insert(struct replica *r, struct records *rs,
		      struct identity *idn, struct records_row *row,
		      char id_out[SCHEMA_ID_MAX + 1], struct err *e)
{
	const struct schema_value *given = records_row_get(row, "branch_id");
	const char *branch;
	char fresh[RECORDS_ID_HEX + 1];
	struct merge *m = NULL;
	int deleted;

	records_new_id(fresh);
	if (row->table->scope_is_id) {
		/* A branch's id is its scope: a chosen one is the usual case. */
		branch = given ? given->text : fresh;
	} else if (given) {
		branch = given->text;
	} else {
		branch = identity_default_branch(idn);
		if (!branch) {
			err_set(e, ERR_INVALID, "branch_id is required; give "
				"branch_id=ID, or create the replica with "
				"'init --branch ID' to set a default");
			return -1;
		}
		if (records_row_set(row, "branch_id", branch, strlen(branch),
				    e))
			return -1;
	}
	if (identity_may_write(idn, branch, e))
		return -1;
	snprintf(id_out, SCHEMA_ID_MAX + 1, "%s",
		 row->table->scope_is_id ? branch : fresh);
	if (row->table->scope_is_id && given) {
		if (merge_new(r->db, &m, e))
			return -1;
		deleted = merge_is_deleted(m, row->table->name, id_out,
					   id_out, e);
		merge_free(m);
		if (deleted < 0)
			return -1;
		if (deleted) {
			err_set(e, ERR_INVALID, "record %s in table '%s' was "
				"deleted; a deleted record cannot be written "
				"again", id_out, row->table->name);
			return -1;
		}
	}
	return records_insert(rs, id_out, row, e);
}

/* The update half of put. */
static int put_update(struct replica *r, struct records *rs,
		      struct identity *idn, const char *id,
		      const struct records_row *row, struct err *e)
{
	const struct schema_value *given = records_row_get(row, "branch_id");
	char *branch = NULL;
	int found = 0, rc = -1;

	if (records_find(rs, row->table, id, &branch, e))
		goto cleanup;
	if (!branch) {
		report_missing(r, row->table, id,
			       given ? given->text
				     : identity_default_branch(idn), 1, e);
		goto cleanup;
	}
	if (identity_may_write(idn, branch, e) ||
	    records_update(rs, id, branch, row, &found, e))
		goto cleanup;
	if (!found) {
		report_missing(r, row->table, id, branch, 1, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	mem_free(branch);
	return rc;
}

static int put_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *id = NULL, *db = NULL;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--id", &id, NULL },
		{ NULL, NULL, NULL },
	};
	const struct schema_table *t = NULL;
	struct records_row row;
	struct replica *r = NULL;
	struct records *rs = NULL;
	struct capture *cap = NULL;
	struct identity idn;
	char out_id[SCHEMA_ID_MAX + 1] = "";
	int npos = 0, count = 0;
	struct err e;

	err_init(&e);
	memset(&idn, 0, sizeof idn);
	records_row_init(&row, NULL);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos < 1) {
		cli_usage(cmd, &e, "put needs a TABLE");
		goto cleanup;
	}
	if (id && npos < 2) {
		cli_usage(cmd, &e, "give at least one COLUMN=VALUE to change");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    !(t = find_table(argv[0], &e)))
		goto cleanup;
	records_row_init(&row, t);
	if (put_pairs(cmd, argv + 1, npos - 1, &row, &e) ||
	    (id && check_id(id, &e)))
		goto cleanup;
	if (replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e) || identity_unlock(&idn, &e) ||
	    records_new(r->db, &rs, &e) ||
	    capture_begin(r, &idn.signer, &cap, &e))
		goto cleanup;
	records_set_capture(rs, cap);
	if (id) {
		if (put_update(r, rs, &idn, id, &row, &e))
			goto cleanup;
		snprintf(out_id, sizeof out_id, "%s", id);
	} else if (put_insert(r, rs, &idn, &row, out_id, &e)) {
		goto cleanup;
	}
	if (capture_commit(cap, &count, &e))
		goto cleanup;
	printf("%s\n", out_id);
cleanup:
	capture_free(cap);
	records_free(rs);
	records_row_clear(&row);
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

static void get_text(const struct schema_table *t,
		     const struct schema_value *vals)
{
	size_t i;
	char num[24];

	for (i = 0; i < t->ncolumns + 2; i++) {
		printf("%s: ", i == 0 ? "id" : i == 1 ? "branch_id"
						     : t->columns[i - 2].name);
		if (vals[i].kind == SCHEMA_VALUE_INT) {
			snprintf(num, sizeof num, "%lld", (long long)vals[i].i);
			fputs(num, stdout);
		} else if (vals[i].kind == SCHEMA_VALUE_TEXT) {
			cli_text_field(stdout, vals[i].text,
				       strlen(vals[i].text));
		}
		putchar('\n');
	}
}

static void get_json(const struct schema_table *t,
		     const struct schema_value *vals)
{
	size_t i;

	putchar('{');
	for (i = 0; i < t->ncolumns + 2; i++) {
		const char *name = i == 0 ? "id" : i == 1
			? "branch_id" : t->columns[i - 2].name;

		if (i)
			putchar(',');
		cli_json_string(stdout, name, strlen(name));
		putchar(':');
		if (vals[i].kind == SCHEMA_VALUE_INT)
			printf("%lld", (long long)vals[i].i);
		else if (vals[i].kind == SCHEMA_VALUE_TEXT)
			cli_json_string(stdout, vals[i].text,
					strlen(vals[i].text));
		else
			fputs("null", stdout);
	}
	puts("}");
}

static int get_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL;
	int json = 0, npos = 0, found = 0;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct schema_value vals[RECORDS_MAX_COLUMNS];
	const struct schema_table *t = NULL;
	struct replica *r = NULL;
	struct records *rs = NULL;
	struct identity idn;
	struct err e;
	size_t i;

	err_init(&e);
	memset(&idn, 0, sizeof idn);
	memset(vals, 0, sizeof vals);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos != 2) {
		cli_usage(cmd, &e, "get needs a TABLE and an ID");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    !(t = find_table(argv[0], &e)) || check_id(argv[1], &e))
		goto cleanup;
	if (t->ncolumns + 2 > RECORDS_MAX_COLUMNS) {
		err_set(&e, ERR_INVALID, "table '%s' has too many columns",
			t->name);
		goto cleanup;
	}
	if (replica_open(db, REPLICA_OPEN, &r, &e) ||
	    records_new(r->db, &rs, &e) ||
	    records_get(rs, t, argv[1], vals, &found, &e))
		goto cleanup;
	if (!found) {
		/* Only to tell "deleted" from "never here": no passphrase. */
		if (t->scope_is_id)
			report_missing(r, t, argv[1], argv[1], 0, &e);
		else if (identity_load(r, &idn, &e) == 0)
			report_missing(r, t, argv[1],
				       identity_default_branch(&idn), 0, &e);
		goto cleanup;
	}
	if (json)
		get_json(t, vals);
	else
		get_text(t, vals);
cleanup:
	for (i = 0; i < RECORDS_MAX_COLUMNS; i++)
		schema_value_clear(&vals[i]);
	records_free(rs);
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

static int delete_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ NULL, NULL, NULL },
	};
	const struct schema_table *t = NULL;
	struct replica *r = NULL;
	struct records *rs = NULL;
	struct capture *cap = NULL;
	struct identity idn;
	char *branch = NULL;
	int npos = 0, found = 0, count = 0;
	struct err e;

	err_init(&e);
	memset(&idn, 0, sizeof idn);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos != 2) {
		cli_usage(cmd, &e, "delete needs a TABLE and an ID");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    !(t = find_table(argv[0], &e)) || check_id(argv[1], &e))
		goto cleanup;
	if (replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e) || identity_unlock(&idn, &e) ||
	    records_new(r->db, &rs, &e) ||
	    capture_begin(r, &idn.signer, &cap, &e) ||
	    records_find(rs, t, argv[1], &branch, &e))
		goto cleanup;
	if (!branch) {
		report_missing(r, t, argv[1],
			       t->scope_is_id ? argv[1]
					      : identity_default_branch(&idn),
			       1, &e);
		goto cleanup;
	}
	if (identity_may_write(&idn, branch, &e) ||
	    records_delete(rs, t, argv[1], branch, &found, &e))
		goto cleanup;
	if (!found) {
		report_missing(r, t, argv[1], branch, 1, &e);
		goto cleanup;
	}
	if (capture_commit(cap, &count, &e))
		goto cleanup;
cleanup:
	mem_free(branch);
	capture_free(cap);
	records_free(rs);
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_records_put = {
	.name = "put",
	.summary = "add a record, or change columns of one",
	.usage = put_usage,
	.run = put_run,
};

const struct cli_command cmd_records_get = {
	.name = "get",
	.summary = "print one record",
	.usage = get_usage,
	.run = get_run,
};

const struct cli_command cmd_records_delete = {
	.name = "delete",
	.summary = "delete a record for good",
	.usage = delete_usage,
	.run = delete_run,
};
