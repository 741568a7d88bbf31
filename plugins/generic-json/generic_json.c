#include "firegrid/plugin.h"
FG_PLUGIN_DEFINE(generic_json, .name = "generic-json", .version = "0");
