/* The command line. */
#ifndef SHARDBUS_DEMO_OPTIONS_H
#define SHARDBUS_DEMO_OPTIONS_H

struct options {
    unsigned shards, producers;
    double rate, duration;
    const char *data_dir; /* NULL: memory only */
    int durability;       /* enum sb_durability, with data_dir */
};

/* Fills *opt; prints the usage and exits 0 on --help, exits 2 on a usage error. */
void parse_options(int argc, char **argv, struct options *opt);

#endif
