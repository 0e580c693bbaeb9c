#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 12
void* run(void* arg){
  __m512 a[N]; for(int i=0;i<N;i++) a[i]=_mm512_set1_ps(i*0.001f);
  __m512 b=_mm512_set1_ps(0.9999f), c=_mm512_set1_ps(0.0001f);
  long iters=200000000;
  for(long it=0;it<iters;it++){ for(int i=0;i<N;i++) a[i]=_mm512_fmadd_ps(a[i],b,c);}
  float s=0; for(int i=0;i<N;i++) s+=_mm512_reduce_add_ps(a[i]);
  *(float*)arg=s; return 0;
}
int main(int argc,char**argv){
  int T=argc>1?atoi(argv[1]):1; pthread_t th[4]; float out[4];
  double t0=now(); for(int i=0;i<T;i++) pthread_create(&th[i],0,run,&out[i]); for(int i=0;i<T;i++) pthread_join(th[i],0);
  double dt=now()-t0; double flops=T*200000000.0*N*16*2;
  printf("threads %d: %.1f GFLOP/s (%.3fs) %f\n",T,flops/dt/1e9,dt,out[0]);
}
