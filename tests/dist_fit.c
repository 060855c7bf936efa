/* dist_fit.c — nb_fit under MPI: trains a small MLP with a validation split and
 * writes rank 0's final weights, history and evaluation to a file, so
 * tests/dist_fit.py can compare a 2-rank run with a 1-rank run of the same
 * global batch.  Usage: dist_fit OUT [overlap 0|1] [bad-rank]: with a bad rank,
 * that rank's data holds a label out of range, and every rank must stop with
 * its message. */
#include <stdio.h>
#include <stdlib.h>

#include <nabla/nabla.h>
#include <nabla/nb_dist.h>

enum { N = 96, IN = 6, K = 3 };

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK || argc < 2) {
        fprintf(stderr, "dist_fit: %s\n", argc < 2 ? "usage: dist_fit OUT [overlap]" : nb_last_error());
        return 2;
    }
    float x[N * IN];
    int32_t y[N];
    nb_rng r;
    nb_rng_seed(&r, 21);
    for (int i = 0; i < N; i++) {
        y[i] = i % K;
        for (int j = 0; j < IN; j++) x[i * IN + j] = nb_rng_uniform_range(&r, -1, 1) + (j == y[i] ? 1.0f : 0.0f);
    }
    if (argc > 3 && atoi(argv[3]) == nb_dist_rank()) y[40] = 7;
    nb_model *m = nb_sequential(IN);
    nb_model_set_seed(m, 11);
    nb_add_dense(m, 16, NB_TANH);
    nb_add_dense(m, K, NB_LINEAR);
    nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                     .optimizer = nb_adam(0.01f)});
    nb_history h;
    nb_fit_opts o = {.epochs = 3, .batch_size = 16, .validation_split = 0.25f, .verbose = NB_VERBOSE_SILENT,
                     .no_overlap = argc > 2 && atoi(argv[2]) == 0};
    nb_status s = nb_fit(m, x, y, N, &o, &h);
    float loss = 0, acc = 0;
    if (s == NB_OK) s = nb_evaluate(m, x, y, N, &loss, &acc);
    if (s != NB_OK) {
        fprintf(stderr, "dist_fit: rank %d: %s\n", nb_dist_rank(), nb_last_error());
        nb_dist_finalize();
        return 1;
    }
    if (nb_dist_rank() == 0) {
        FILE *f = fopen(argv[1], "w");
        if (!f) return 1;
        fprintf(f, "ranks %d\n", nb_dist_size());
        for (int e = 0; e < h.epochs; e++)
            fprintf(f, "epoch %.9g %.9g %.9g %.9g\n", h.loss[e], h.accuracy[e], h.val_loss[e], h.val_accuracy[e]);
        fprintf(f, "evaluate %.9g %.9g\n", loss, acc);
        const float *w = nb_model_weights(m);
        for (size_t i = 0; i < nb_model_param_count(m); i++) fprintf(f, "w %.9g\n", w[i]);
        fclose(f);
    }
    nb_history_free(&h);
    nb_model_free(m);
    nb_dist_finalize();
    return 0;
}
