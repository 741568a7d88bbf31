#include "firegrid/plugin.h"
FG_PLUGIN_DEFINE(zigbee2mqtt, .name = "zigbee2mqtt", .version = "0");
