#define UTS_RELEASE "7.2.0-sample-nometa"
