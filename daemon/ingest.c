/* ingest.c: see ingest.h */
