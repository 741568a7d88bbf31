/*
 * The device registry (一楼一档): where every device is and who lives there,
 * kept by property managers in spreadsheets and imported as CSV
 * (`firegridctl devices import FILE.csv`).  Columns, by name in the header
 * row, any order; only device_id is required:
 *
 *   device_id    the id the device's plugin reports (as in incidents)
 *   plugin       the plugin it is decoded by (documentation, checked as a name)
 *   name         a label ("3-2-201 kitchen smoke")
 *   compound, building, unit, floor, room       its place
 *   grid_small, grid_medium, grid_large         grid cells of the three tiers
 *   flags        household and device flags, separated by ';' or spaces:
 *                elderly_alone, mobility_impaired, bridge (a gateway/bridge
 *                whose outage takes its devices with it), or any other
 *                lower-case word
 *   contact      a contact label (a name or desk, not a phone book)
 *
 * The CSV is RFC 4180 (quotes, doubled quotes, CRLF or LF, a UTF-8 BOM is
 * skipped).  Every problem is reported, each as "FILE:LINE: column NAME:
 * reason", and an import with any problem changes nothing: it is one
 * transaction, all or nothing.  Registered devices travel with their place,
 * grid cells and flags in every webhook (data.device); devices not in the
 * registry still make incidents, marked "registered": false.
 *
 * The registry lives in the devices table (store.h, schema v2), written by
 * firegridctl directly in one transaction (SQLite's busy timeout serialises
 * it with a running firegridd).
 */
#ifndef FG_REGISTRY_H
#define FG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "store.h"

enum fg_registry_col {
	FG_REG_DEVICE_ID = 0,
	FG_REG_PLUGIN,
	FG_REG_NAME,
	FG_REG_COMPOUND,
	FG_REG_BUILDING,
	FG_REG_UNIT,
	FG_REG_FLOOR,
	FG_REG_ROOM,
	FG_REG_GRID_SMALL,
	FG_REG_GRID_MEDIUM,
	FG_REG_GRID_LARGE,
	FG_REG_FLAGS,
	FG_REG_CONTACT,
	FG_REG__COLS
};

/* Column names in export order. */
const char *fg_registry_col_name(enum fg_registry_col c);

/* One device's entry; absent values are NULL.  flags is normalised to
 * single spaces. */
struct fg_registry_row {
	char *f[FG_REG__COLS];
	int line;                  /* where it started in the file */
};
void fg_registry_rows_free(struct fg_registry_row *rows, size_t n);

/*
 * Parse and validate a whole CSV text (name is used in messages).  0 with
 * *ret rows (possibly none); or -EINVAL with every problem in *ret_errors
 * (newline separated, in file order), -ENOMEM, -EFBIG (more than 100000
 * rows).  ret_errors may be NULL.
 */
int fg_registry_parse_csv(const char *name, const char *text, size_t len,
                          struct fg_registry_row **ret, size_t *ret_n, char **ret_errors);

/*
 * Write the rows into the registry in one transaction (committed here):
 * each device is registered with exactly these values.  replace: devices
 * not in rows stop being registered.  Returns the number of devices
 * written, or -errno (nothing changed).
 */
int fg_registry_import(fg_store *st, const struct fg_registry_row *rows, size_t n,
                       bool replace, int64_t now_ms);

/* The registry as CSV (header and registered devices by id).  Returns the
 * number of devices, or -errno. */
int fg_registry_export(fg_store *st, FILE *f);

/* Does the registry give `device` this flag?  (false when unregistered) */
bool fg_registry_has_flag(fg_store *st, const char *device, const char *flag);

#endif
