/* backoff.c: see backoff.h */
