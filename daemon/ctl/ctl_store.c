/* ctl_store.c: see ctl.h */
