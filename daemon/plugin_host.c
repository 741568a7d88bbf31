/* plugin_host.c: see plugin_host.h */
