/* webhook.c: see webhook.h */
