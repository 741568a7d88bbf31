/*
 * Deliberately broken plugin modules for test_plugin_host: one source, one
 * variant per -D flag, each built as its own shared module named after the
 * variant.  The descriptors are written out by hand (not FG_PLUGIN_DEFINE)
 * because each one breaks a rule the macro would get right.
 */
#include <errno.h>
#include <stddef.h>
#include "firegrid/plugin.h"

__attribute__((unused)) static int decode_nothing(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	(void)state; (void)msg; (void)ctx;
	return 0;
}

__attribute__((unused)) static int init_fails(const struct fg_host *host, const void *config, void **ret_state)
{
	(void)host; (void)config; (void)ret_state;
	return -EIO;
}

#define BASE .abi_major = FG_PLUGIN_ABI_MAJOR, .struct_size = sizeof(struct fg_plugin)

#if defined(BAD_MAJOR)
static const struct fg_plugin desc = {
	.abi_major = FG_PLUGIN_ABI_MAJOR + 1, .struct_size = sizeof(struct fg_plugin),
	.name = "bad_major", .decode = decode_nothing,
};
#elif defined(SMALL_STRUCT)
static const struct fg_plugin desc = {
	.abi_major = FG_PLUGIN_ABI_MAJOR, .struct_size = offsetof(struct fg_plugin, options),
	.name = "small_struct", .decode = decode_nothing,
};
#elif defined(WRONG_NAME)
static const struct fg_plugin desc = { BASE, .name = "other_name", .decode = decode_nothing };
#elif defined(NO_DECODE)
static const struct fg_plugin desc = { BASE, .name = "no_decode" };
#elif defined(INIT_FAILS)
static const struct fg_plugin desc = {
	BASE, .name = "init_fails", .init = init_fails, .decode = decode_nothing,
};
#elif defined(BAD_OPTION)
struct cfg { int flag; };
static const struct fg_option opts[] = {
	{ "flag", FG_OPT_INT, "1", offsetof(struct cfg, flag), "int64 into an int", 0, 0 },
	FG_OPTION_END
};
static const struct fg_plugin desc = {
	BASE, .name = "bad_option", .options = opts, .config_size = sizeof(struct cfg),
	.decode = decode_nothing,
};
#elif defined(GOOD)
/* The healthy neighbour: loads and decodes although the modules next to it
 * are refused ("1" -> smoke of device "good-1"). */
static const struct fg_host *good_host;
static int good_init(const struct fg_host *host, const void *config, void **ret_state)
{
	(void)config; (void)ret_state;
	good_host = host;
	return 0;
}
static int good_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	(void)state;
	if (msg->len != 1 || msg->payload[0] != '1')
		return 0;
	struct fg_event ev = { .struct_size = sizeof(ev), .kind = FG_KIND_SMOKE,
	                       .severity = FG_SEV_CRITICAL, .device = "good-1" };
	return good_host->emit(ctx, &ev);
}
static const struct fg_plugin desc = {
	BASE, .name = "good", .version = "1.0", .init = good_init, .decode = good_decode,
};
#elif defined(NO_SYMBOL)
__attribute__((used)) static const struct fg_plugin desc = {
	BASE, .name = "no_symbol", .decode = decode_nothing,
};
#endif

#ifndef NO_SYMBOL
__attribute__((visibility("default"))) const struct fg_plugin *firegrid_plugin_v1(void);
const struct fg_plugin *firegrid_plugin_v1(void)
{
	return &desc;
}
#endif
