/* incident.c: see incident.h */
