/* Unit tests for the device registry: CSV reading (quotes, CRLF, BOM,
 * padding), every validation error with its line and column, all-or-nothing
 * import, --replace, export round trip, and the registry travelling with
 * incidents. */
#include <errno.h>
#include "incident.h"
#include "registry.h"
#include "store.h"
#include "store_test.h"
#include "util.h"

#define HEADER "device_id,plugin,name,compound,building,unit,floor,room,grid_small,grid_medium," \
	"grid_large,flags,contact\r\n"

static bool has(const char *errs, const char *needle)
{
	bool ok = errs && strstr(errs, needle);
	if (!ok)
		fprintf(stderr, "  expected \"%s\" in:\n%s\n", needle, errs ? errs : "(none)");
	return ok;
}

static int parse(const char *text, struct fg_registry_row **rows, size_t *n, char **errs)
{
	*errs = NULL;
	*rows = NULL;
	*n = 0;
	return fg_registry_parse_csv("reg.csv", text, strlen(text), rows, n, errs);
}

static void test_parse_good(void)
{
	struct fg_registry_row *rows;
	size_t n;
	char *errs;
	const char *text =
		"\xEF\xBB\xBF" HEADER
		"0x00158d0001a2b3c4,zigbee2mqtt,\"3-2-201 kitchen, smoke\",heping,3,2,2,201,b3,c5,s2,"
		"elderly_alone; mobility_impaired,\"Wang \"\"laoshi\"\"\"\r\n"
		"\r\n"
		"  dev-b , generic-json,stair,heping,3,1,1,,b3,c5,s2,,\n"
		"dev-c,,,,,,,,,,,bridge,";
	CHECK(parse(text, &rows, &n, &errs) == 0 && errs == NULL);
	CHECK(n == 3);
	if (n != 3)
		return;
	CHECK(strcmp(rows[0].f[FG_REG_NAME], "3-2-201 kitchen, smoke") == 0);
	CHECK(strcmp(rows[0].f[FG_REG_CONTACT], "Wang \"laoshi\"") == 0);
	CHECK(strcmp(rows[0].f[FG_REG_FLAGS], "elderly_alone mobility_impaired") == 0);
	CHECK(rows[0].line == 2);
	CHECK(strcmp(rows[1].f[FG_REG_DEVICE_ID], "dev-b") == 0 && rows[1].line == 4);
	CHECK(rows[1].f[FG_REG_ROOM] == NULL && rows[1].f[FG_REG_FLAGS] == NULL);
	CHECK(strcmp(rows[2].f[FG_REG_FLAGS], "bridge") == 0 && rows[2].f[FG_REG_PLUGIN] == NULL);
	fg_registry_rows_free(rows, n);

	/* Columns in any order, only device_id required. */
	CHECK(parse("Building,DEVICE_ID\n7,d1\n", &rows, &n, &errs) == 0 && n == 1);
	CHECK(n == 1 && strcmp(rows[0].f[FG_REG_BUILDING], "7") == 0);
	fg_registry_rows_free(rows, n);
	/* A header alone is an empty registry. */
	CHECK(parse("device_id\n", &rows, &n, &errs) == 0 && n == 0);
	fg_registry_rows_free(rows, n);
}

static void test_parse_errors(void)
{
	struct fg_registry_row *rows;
	size_t n;
	char *errs;
	char longv[200];
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	char text[2048];
	snprintf(text, sizeof(text),
	         "device_id,building,flags,colour,building\n"      /* 1 */
	         ",3,,red,3\n"                                       /* 2 */
	         "d1,3,Elderly,red,3\n"                              /* 3 */
	         "d2,%s,,red,3\n"                                    /* 4 */
	         "d3,\"a\"b,,red,3\n"                                /* 5 */
	         "d4,3\n"                                            /* 6 */
	         "d1,3,,red,3\n"                                     /* 7 */
	         "d5,\"two\nlines\",,red,3\n"                        /* 8-9 */
	         "d6,x\"y,,red,3\n"                                  /* 10 */
	         "d7,\"never closed,,red,3\n", longv);               /* 11 */
	CHECK(parse(text, &rows, &n, &errs) == -EINVAL && rows == NULL);
	CHECK(has(errs, "reg.csv:1: column colour: unknown column"));
	CHECK(has(errs, "reg.csv:1: column building: column given twice"));
	CHECK(has(errs, "reg.csv:2: column device_id: device_id is required"));
	CHECK(has(errs, "reg.csv:3: column flags: flags are lower-case words"));
	CHECK(has(errs, "reg.csv:4: column building: longer than 128 characters"));
	CHECK(has(errs, "reg.csv:5: text after the closing quote of a field"));
	CHECK(has(errs, "reg.csv:6: 2 fields, the header has 5"));
	CHECK(has(errs, "reg.csv:7: column device_id: 'd1' is already on line 3"));
	CHECK(has(errs, "reg.csv:8: column building: contains control characters"));
	CHECK(has(errs, "reg.csv:10: a quote inside an unquoted field"));
	CHECK(has(errs, "reg.csv:11: a quoted field is not closed"));
	free(errs);

	CHECK(parse("name,building\nx,1\n", &rows, &n, &errs) == -EINVAL);
	CHECK(has(errs, "reg.csv:1: column device_id: the header has no device_id column"));
	free(errs);
	CHECK(parse("", &rows, &n, &errs) == -EINVAL);
	CHECK(has(errs, "the file is empty"));
	free(errs);
	CHECK(parse("device_id,plugin\nd1,zig bee\n", &rows, &n, &errs) == -EINVAL);
	CHECK(has(errs, "reg.csv:2: column plugin: 'zig bee' is not a plugin name"));
	free(errs);
	static const char nul[] = "device_id\nd\0x\n";
	CHECK(fg_registry_parse_csv("reg.csv", nul, sizeof(nul) - 1, &rows, &n, &errs) == -EINVAL);
	CHECK(has(errs, "NUL byte"));
	free(errs);
}

static fg_store *st;

static int64_t q(const char *sql)
{
	return test_query_int(fg_store_db(st), sql);
}

static void import_text(const char *text, bool replace, int want)
{
	struct fg_registry_row *rows;
	size_t n;
	char *errs;
	CHECK(parse(text, &rows, &n, &errs) == 0);
	CHECK(fg_registry_import(st, rows, n, replace, 5000) == want);
	fg_registry_rows_free(rows, n);
}

static void test_store(void)
{
	/* A device seen before it was registered keeps its sightings. */
	CHECK(sqlite3_exec(fg_store_db(st), "INSERT INTO devices(id, source, plugin, first_seen_ms,"
	                   " last_seen_ms) VALUES('dev-b', 'gen', 'generic-json', 100, 200)",
	                   NULL, NULL, NULL) == SQLITE_OK);
	import_text(HEADER "dev-a,zigbee2mqtt,kitchen,heping,3,2,2,201,b3,c5,s2,elderly_alone,desk\n"
	            "dev-b,,stair,heping,3,1,,,,,,,\n", false, 2);
	CHECK(q("SELECT count(*) FROM devices WHERE registered = 1") == 2);
	CHECK(q("SELECT first_seen_ms = 100 AND last_seen_ms = 200 AND source = 'gen'"
	        " FROM devices WHERE id = 'dev-b'") == 1);
	CHECK(fg_registry_has_flag(st, "dev-a", "elderly_alone"));
	CHECK(!fg_registry_has_flag(st, "dev-a", "elderly"));
	CHECK(!fg_registry_has_flag(st, "dev-b", "elderly_alone"));
	CHECK(!fg_registry_has_flag(st, "nobody", "elderly_alone"));

	/* Without --replace other devices stay; with it they are dropped. */
	import_text("device_id,building\ndev-c,4\n", false, 1);
	CHECK(q("SELECT count(*) FROM devices WHERE registered = 1") == 3);
	import_text("device_id,building,flags\ndev-a,9,bridge\n", true, 1);
	CHECK(q("SELECT count(*) FROM devices WHERE registered = 1") == 1);
	CHECK(q("SELECT building = '9' AND name IS NULL AND flags = 'bridge' FROM devices"
	        " WHERE id = 'dev-a'") == 1);
	CHECK(q("SELECT registered = 0 AND name IS NULL AND last_seen_ms = 200 FROM devices"
	        " WHERE id = 'dev-b'") == 1);

	/* Export, and the export reads back the same. */
	import_text(HEADER "dev-a,zigbee2mqtt,\"kitchen, north\",heping,3,2,2,201,b3,c5,s2,"
	            "elderly_alone;mobility_impaired,\"Wang \"\"laoshi\"\"\"\n", true, 1);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	CHECK(fg_registry_export(st, f) == 1);
	fclose(f);
	CHECK(out && strcmp(out, HEADER "dev-a,zigbee2mqtt,\"kitchen, north\",heping,3,2,2,201,b3,"
	                    "c5,s2,elderly_alone;mobility_impaired,\"Wang \"\"laoshi\"\"\"\r\n") == 0);
	struct fg_registry_row *rows = NULL;
	size_t n = 0;
	char *errs = NULL;
	CHECK(out && parse(out, &rows, &n, &errs) == 0 && n == 1);
	if (n == 1)
		CHECK(strcmp(rows[0].f[FG_REG_FLAGS], "elderly_alone mobility_impaired") == 0);
	fg_registry_rows_free(rows, n);
	free(out);

	/* Incidents read their device's registry entry. */
	fg_incidents *incs;
	CHECK(fg_incidents_new(st, NULL, &incs) == 0);
	struct fg_ev ev = test_ev("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 6000);
	int64_t id = -1;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	ev = test_ev("dev-x", FG_KIND_SMOKE, FG_SEV_CRITICAL, 6000);
	int64_t idx = -1;
	CHECK(fg_incidents_apply(incs, &ev, &idx) == FG_APPLY_OPENED);
	struct fg_incident inc;
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.registered == 1 && strcmp(inc.reg[FG_REG_BUILDING], "3") == 0);
	CHECK(strcmp(inc.reg[FG_REG_GRID_LARGE], "s2") == 0 && inc.reg[FG_REG_CONTACT]);
	fg_incident_clear(&inc);
	CHECK(fg_incident_get(st, idx, &inc) == 0);
	CHECK(inc.registered == 0 && inc.reg[FG_REG_BUILDING] == NULL);
	fg_incident_clear(&inc);
	CHECK(q("SELECT registered FROM devices WHERE id = 'dev-x'") == 0);
	fg_incidents_free(incs);
}

int main(void)
{
	char path[256];
	test_parse_good();
	test_parse_errors();
	test_dir_make();
	CHECK(fg_store_open(test_path(path, sizeof(path), "reg.db"), FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return 1;
	test_store();
	CHECK(fg_store_commit(st) == 0);
	fg_store_close(st);
	return test_result("test_registry");
}
