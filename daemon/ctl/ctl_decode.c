/* ctl_decode.c: see ctl.h */
