/* The device registry: CSV in and out, validation, the devices table (see
 * registry.h).  CSV has no library among our dependencies; RFC 4180 is
 * small enough to read here, field by field. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "registry.h"
#include "util.h"

#define MAX_ROWS 100000
#define MAX_ID 128
#define MAX_TEXT 128
#define MAX_FLAG 32
#define MAX_ERRORS 50              /* reported; the count says how many more */

static const char *const col_names[FG_REG__COLS] = {
	"device_id", "plugin", "name", "compound", "building", "unit", "floor", "room",
	"grid_small", "grid_medium", "grid_large", "flags", "contact",
};

const char *fg_registry_col_name(enum fg_registry_col c)
{
	return (unsigned)c < FG_REG__COLS ? col_names[c] : NULL;
}

void fg_registry_rows_free(struct fg_registry_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		for (int c = 0; c < FG_REG__COLS; c++)
			free(rows[i].f[c]);
	free(rows);
}

/* ---- reading CSV ------------------------------------------------------------ */

struct csv {
	const char *p, *end;
	int line;
};

struct record {
	char **v;
	size_t n, cap;
	int line;
};

static void record_clear(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
}

static int record_add(struct record *r, const char *s, size_t len)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		char **nv = realloc(r->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = ncap;
	}
	if (!(r->v[r->n] = strndup(s, len)))
		return -ENOMEM;
	r->n++;
	return 0;
}

/* One field, quoted or not, into buf (reused).  -EINVAL with *why. */
static int csv_field(struct csv *c, char **buf, size_t *cap, size_t *len, const char **why)
{
	*len = 0;
	bool quoted = c->p < c->end && *c->p == '"';
	if (quoted)
		c->p++;
	for (;;) {
		if (c->p == c->end) {
			if (quoted) {
				*why = "a quoted field is not closed";
				return -EINVAL;
			}
			break;
		}
		char ch = *c->p;
		if (ch == '\0') {
			*why = "the file contains a NUL byte";
			return -EINVAL;
		}
		if (quoted && ch == '"') {
			if (c->p + 1 < c->end && c->p[1] == '"') {
				c->p++;       /* a doubled quote is one quote */
			} else {
				c->p++;
				if (c->p < c->end && *c->p != ',' && *c->p != '\r' && *c->p != '\n') {
					*why = "text after the closing quote of a field";
					return -EINVAL;
				}
				break;
			}
		} else if (!quoted && (ch == ',' || ch == '\r' || ch == '\n')) {
			break;
		} else if (!quoted && ch == '"') {
			*why = "a quote inside an unquoted field (quote the whole field)";
			return -EINVAL;
		} else if (ch == '\n') {
			c->line++;
		}
		if (*len + 2 > *cap) {
			size_t ncap = *cap ? *cap * 2 : 256;
			char *nb = realloc(*buf, ncap);
			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*cap = ncap;
		}
		(*buf)[(*len)++] = *c->p++;
	}
	if (!quoted) {        /* spreadsheets pad cells now and then */
		size_t s = 0;
		while (s < *len && ((*buf)[s] == ' ' || (*buf)[s] == '\t'))
			s++;
		while (*len > s && ((*buf)[*len - 1] == ' ' || (*buf)[*len - 1] == '\t'))
			(*len)--;
		if (s)
			memmove(*buf, *buf + s, *len - s);
		*len -= s;
	}
	return 0;
}

/* The next record: 1, 0 at the end of the text, -errno (*why). */
static int csv_record(struct csv *c, struct record *r, const char **why)
{
	char *buf = NULL;
	size_t cap = 0, len;
	record_clear(r);
	if (c->p >= c->end)
		return 0;
	r->line = c->line;
	int rc;
	for (;;) {
		if ((rc = csv_field(c, &buf, &cap, &len, why)) < 0 ||
		    (rc = record_add(r, buf ? buf : "", len)) < 0)
			break;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '\r')
			c->p++;
		if (c->p < c->end && *c->p == '\n')
			c->p++;
		c->line++;
		rc = 1;
		break;
	}
	free(buf);
	return rc;
}

/* Skip to the next line after a broken record, to go on reporting. */
static void csv_skip_line(struct csv *c)
{
	while (c->p < c->end && *c->p != '\n')
		c->p++;
	if (c->p < c->end) {
		c->p++;
		c->line++;
	}
}

/* ---- validation ------------------------------------------------------------------ */

struct errors {
	const char *file;
	char *text;
	size_t len, n;
	bool oom;
};

__attribute__((format(printf, 4, 5)))
static void err(struct errors *e, int line, const char *col, const char *fmt, ...)
{
	char why[256], *line_text = NULL;
	va_list ap;
	if (++e->n > MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	int n = col ? asprintf(&line_text, "%s:%d: column %s: %s", e->file, line, col, why)
	            : asprintf(&line_text, "%s:%d: %s", e->file, line, why);
	if (n < 0) {
		e->oom = true;
		return;
	}
	char *nt = realloc(e->text, e->len + (size_t)n + 2);
	if (!nt) {
		free(line_text);
		e->oom = true;
		return;
	}
	e->text = nt;
	e->len += (size_t)sprintf(e->text + e->len, "%s%s", e->len ? "\n" : "", line_text);
	free(line_text);
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Normalise a flags cell in place ("elderly_alone; Bridge" is refused:
 * flags are lower-case words).  NULL reason when fine. */
static const char *flags_check(char *s)
{
	char out[1024] = "";
	size_t o = 0;
	for (char *t = s; *t;) {
		t += strspn(t, " ;|\t");
		size_t n = strcspn(t, " ;|\t");
		if (!n)
			break;
		if (n > MAX_FLAG)
			return "a flag is longer than 32 characters";
		for (size_t i = 0; i < n; i++)
			if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
				return "flags are lower-case words (a-z, 0-9, _) separated by ';' or spaces";
		if (o + n + 2 > sizeof(out))
			return "too many flags";
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? " " : "", (int)n, t);
		t += n;
	}
	strcpy(s, out);
	return NULL;
}

static void check_cell(struct errors *e, int line, int col, char *v)
{
	size_t n = strlen(v);
	if (col == FG_REG_DEVICE_ID) {
		if (!n)
			err(e, line, col_names[col], "device_id is required");
		else if (n > MAX_ID)
			err(e, line, col_names[col], "longer than %d characters", MAX_ID);
		else if (has_control(v))
			err(e, line, col_names[col], "contains control characters");
		return;
	}
	if (n > MAX_TEXT) {
		err(e, line, col_names[col], "longer than %d characters", MAX_TEXT);
	} else if (has_control(v)) {
		err(e, line, col_names[col], "contains control characters (a line break inside "
		    "a cell?)");
	} else if (col == FG_REG_PLUGIN &&
	           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		err(e, line, col_names[col], "'%.48s' is not a plugin name", v);
	} else if (col == FG_REG_FLAGS) {
		const char *why = flags_check(v);
		if (why)
			err(e, line, col_names[col], "%s", why);
	}
}

/* The header: which registry column each CSV column is. */
static int read_header(struct errors *e, const struct record *r, int *map)
{
	bool seen[FG_REG__COLS] = { false };
	for (size_t i = 0; i < r->n; i++) {
		map[i] = -1;
		for (int c = 0; c < FG_REG__COLS; c++)
			if (strcasecmp(r->v[i], col_names[c]) == 0)
				map[i] = c;
		if (map[i] < 0) {
			err(e, r->line, r->v[i], "unknown column (expected device_id, plugin, name, "
			    "compound, building, unit, floor, room, grid_small, grid_medium, grid_large, "
			    "flags, contact)");
		} else if (seen[map[i]]) {
			err(e, r->line, r->v[i], "column given twice");
			map[i] = -1;
		} else {
			seen[map[i]] = true;
		}
	}
	if (!seen[FG_REG_DEVICE_ID])
		err(e, r->line, "device_id", "the header has no device_id column");
	return 0;
}

static int cmp_rows(const void *a, const void *b)
{
	const struct fg_registry_row *x = a, *y = b;
	int c = strcmp(x->f[FG_REG_DEVICE_ID], y->f[FG_REG_DEVICE_ID]);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

int fg_registry_parse_csv(const char *name, const char *text, size_t len,
                          struct fg_registry_row **ret, size_t *ret_n, char **ret_errors)
{
	struct csv c = { text, text + len, 1 };
	struct errors e = { .file = name };
	struct record r = { 0 };
	struct fg_registry_row *rows = NULL;
	size_t n = 0, cap = 0;
	int *map = NULL, rc = 0;
	size_t ncols = 0;
	bool header = false;
	const char *why = NULL;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		c.p += 3;
	while (rc >= 0) {
		rc = csv_record(&c, &r, &why);
		if (rc == 0)
			break;
		if (rc == -EINVAL) {
			err(&e, r.line, NULL, "%s", why);
			csv_skip_line(&c);
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (r.n == 1 && !r.v[0][0])
			continue;         /* blank line */
		if (!header) {
			header = true;
			ncols = r.n;
			map = calloc(r.n, sizeof(*map));
			if (!map) {
				rc = -ENOMEM;
				break;
			}
			read_header(&e, &r, map);
			continue;
		}
		if (r.n != ncols) {
			err(&e, r.line, NULL, "%zu fields, the header has %zu", r.n, ncols);
			continue;
		}
		if (n == MAX_ROWS) {
			rc = -EFBIG;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct fg_registry_row *nr = realloc(rows, ncap * sizeof(*nr));
			if (!nr) {
				rc = -ENOMEM;
				break;
			}
			rows = nr;
			cap = ncap;
		}
		struct fg_registry_row *row = &rows[n++];
		memset(row, 0, sizeof(*row));
		row->line = r.line;
		for (size_t i = 0; i < r.n; i++) {
			if (map[i] < 0)
				continue;
			check_cell(&e, r.line, map[i], r.v[i]);
			if (r.v[i][0]) {
				/* A column given twice (already reported) maps
				 * twice to one field: the later cell wins. */
				free(row->f[map[i]]);
				row->f[map[i]] = r.v[i];     /* take it */
				r.v[i] = strdup("");
				if (!r.v[i]) {
					rc = -ENOMEM;
					break;
				}
			}
		}
	}
	record_clear(&r);
	free(r.v);
	free(map);
	if (rc >= 0 && !header)
		err(&e, 1, NULL, "the file is empty: it needs a header row with device_id");

	/* Duplicates, reported at the later row. */
	if (rc >= 0 && n > 1) {
		struct fg_registry_row *sorted = malloc(n * sizeof(*sorted));
		if (!sorted) {
			rc = -ENOMEM;
		} else {
			size_t k = 0;
			for (size_t i = 0; i < n; i++)
				if (rows[i].f[FG_REG_DEVICE_ID])
					sorted[k++] = rows[i];
			qsort(sorted, k, sizeof(*sorted), cmp_rows);
			for (size_t i = 1; i < k; i++)
				if (strcmp(sorted[i].f[FG_REG_DEVICE_ID], sorted[i - 1].f[FG_REG_DEVICE_ID]) == 0)
					err(&e, sorted[i].line, "device_id", "'%.64s' is already on line %d",
					    sorted[i].f[FG_REG_DEVICE_ID], sorted[i - 1].line);
			free(sorted);
		}
	}
	if (rc >= 0 && e.oom)
		rc = -ENOMEM;
	if (rc >= 0 && e.n) {
		if (e.n > MAX_ERRORS) {
			char more[64];
			snprintf(more, sizeof(more), "%s:%d: ... and %zu more problems", name, c.line,
			         e.n - MAX_ERRORS);
			char *nt = realloc(e.text, e.len + strlen(more) + 2);
			if (nt) {
				e.text = nt;
				sprintf(e.text + e.len, "\n%s", more);
			}
		}
		rc = -EINVAL;
	}
	if (rc < 0) {
		fg_registry_rows_free(rows, n);
		if (ret_errors)
			*ret_errors = e.text;
		else
			free(e.text);
		return rc;
	}
	free(e.text);
	if (ret_errors)
		*ret_errors = NULL;
	*ret = rows;
	*ret_n = n;
	return 0;
}

/* ---- the devices table ------------------------------------------------------ */

static const char SQL_UNREGISTER[] =
	"UPDATE devices SET registered = 0, registry_plugin = NULL, name = NULL, compound = NULL,"
	" building = NULL, unit = NULL, floor = NULL, room = NULL, grid_small = NULL,"
	" grid_medium = NULL, grid_large = NULL, flags = NULL, contact = NULL, registered_ms = NULL"
	" WHERE registered = 1";
static const char SQL_UPSERT[] =
	"INSERT INTO devices(id, registered, registry_plugin, name, compound, building, unit, floor,"
	" room, grid_small, grid_medium, grid_large, flags, contact, registered_ms)"
	" VALUES(?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
	" ON CONFLICT(id) DO UPDATE SET registered = 1, registry_plugin = excluded.registry_plugin,"
	" name = excluded.name, compound = excluded.compound, building = excluded.building,"
	" unit = excluded.unit, floor = excluded.floor, room = excluded.room,"
	" grid_small = excluded.grid_small, grid_medium = excluded.grid_medium,"
	" grid_large = excluded.grid_large, flags = excluded.flags, contact = excluded.contact,"
	" registered_ms = excluded.registered_ms";
static const char SQL_EXPORT[] =
	"SELECT id, registry_plugin, name, compound, building, unit, floor, room, grid_small,"
	" grid_medium, grid_large, flags, contact FROM devices WHERE registered = 1 ORDER BY id";
static const char SQL_FLAGS[] = "SELECT flags FROM devices WHERE id = ?1 AND registered = 1";

int fg_registry_import(fg_store *st, const struct fg_registry_row *rows, size_t n,
                       bool replace, int64_t now_ms)
{
	int r = fg_store_begin(st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = replace ? fg_store_stmt(st, SQL_UNREGISTER) : NULL;
	if (replace)
		r = s ? fg_store_step_done(s) : -EIO;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (!(s = fg_store_stmt(st, SQL_UPSERT))) {
			r = -EIO;
			break;
		}
		fg_store_bind_text(s, 1, rows[i].f[FG_REG_DEVICE_ID]);
		for (int c = FG_REG_PLUGIN; c < FG_REG__COLS; c++)
			fg_store_bind_text(s, c + 1, rows[i].f[c]);
		sqlite3_bind_int64(s, 14, now_ms);
		r = fg_store_step_done(s);
	}
	if (r < 0) {
		fg_store_rollback(st);
		return r;
	}
	r = fg_store_commit(st);
	return r < 0 ? r : (int)n;
}

/* RFC 4180: quote a cell that needs it. */
static void csv_cell(FILE *f, const char *v, bool first)
{
	if (!first)
		fputc(',', f);
	if (!v)
		return;
	if (!v[strcspn(v, ",\"\r\n")] && v[0] != ' ' && (!*v || v[strlen(v) - 1] != ' ')) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

int fg_registry_export(fg_store *st, FILE *f)
{
	for (int c = 0; c < FG_REG__COLS; c++)
		csv_cell(f, col_names[c], c == 0);
	fputs("\r\n", f);
	sqlite3_stmt *s = fg_store_stmt(st, SQL_EXPORT);
	if (!s)
		return -EIO;
	int r, n = 0;
	while ((r = fg_store_step_row(s)) > 0) {
		for (int c = 0; c < FG_REG__COLS; c++) {
			const char *v = (const char *)sqlite3_column_text(s, c);
			/* Flags go out the way spreadsheets hold them best. */
			if (c == FG_REG_FLAGS && v) {
				char buf[1024];
				snprintf(buf, sizeof(buf), "%s", v);
				for (char *p = buf; *p; p++)
					if (*p == ' ')
						*p = ';';
				csv_cell(f, buf, false);
			} else {
				csv_cell(f, v, c == 0);
			}
		}
		fputs("\r\n", f);
		n++;
	}
	if (r < 0)
		return r;
	return ferror(f) ? -EIO : n;
}

bool fg_registry_has_flag(fg_store *st, const char *device, const char *flag)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_FLAGS);
	if (!s || !device)
		return false;
	fg_store_bind_text(s, 1, device);
	bool found = false;
	if (fg_store_step_row(s) > 0) {
		const char *flags = (const char *)sqlite3_column_text(s, 0);
		size_t n = strlen(flag);
		for (const char *p = flags; p && *p;) {
			p += strspn(p, " ");
			size_t len = strcspn(p, " ");
			if (len == n && strncmp(p, flag, n) == 0)
				found = true;
			p += len;
		}
		sqlite3_reset(s);
	}
	return found;
}
