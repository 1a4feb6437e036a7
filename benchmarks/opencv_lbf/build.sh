#!/bin/sh
# Builds OpenCV 4.10 with the contrib "face" module, then facemark_lbf (the FacemarkLBF
# trainer), from the sources inside the opencv-contrib-python-headless sdist, the one
# route to train FacemarkLBF here: pip's wheels carry no C++ headers or libraries and
# their Python binding cannot train.
#
#   sh benchmarks/opencv_lbf/build.sh WORK_DIR        (about 40 min on 2 cores)
#
# Leaves WORK_DIR/facemark_lbf; benchmarks.peers finds it through CASCADE_OPENCV_LBF.
set -e
WORK=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$WORK" && cd "$WORK"
if [ ! -d src ]; then
    curl -sLO https://files.pythonhosted.org/packages/81/6f/b0192e6f3eceeaa9b2fc148717f19d077edd6be0166b10248db96b9324bc/opencv-contrib-python-headless-4.10.0.84.tar.gz
    mkdir src && tar xzf opencv-contrib-python-headless-4.10.0.84.tar.gz -C src --strip-components 1
fi
cmake -S src/opencv -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DOPENCV_EXTRA_MODULES_PATH=src/opencv_contrib/modules -DBUILD_LIST=face,imgcodecs \
    -DWITH_IPP=OFF -DWITH_OPENCL=OFF -DWITH_ADE=OFF -DWITH_PROTOBUF=OFF -DWITH_EIGEN=OFF \
    -DWITH_LAPACK=OFF -DWITH_ITT=OFF -DWITH_OPENEXR=OFF -DWITH_WEBP=OFF -DWITH_TIFF=OFF \
    -DWITH_OPENJPEG=OFF -DWITH_JASPER=OFF -DBUILD_JPEG=ON -DBUILD_PNG=ON -DBUILD_ZLIB=ON \
    -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_opencv_apps=OFF \
    -DBUILD_opencv_python3=OFF -DBUILD_JAVA=OFF -DCMAKE_INSTALL_PREFIX="$WORK/install"
ninja -C build install
g++ -O2 -std=c++17 "$HERE/facemark_lbf.cpp" -o facemark_lbf -I"$WORK/install/include/opencv4" \
    -L"$WORK/install/lib" -Wl,-rpath,"$WORK/install/lib" \
    -lopencv_face -lopencv_imgcodecs -lopencv_imgproc -lopencv_core
echo "built $WORK/facemark_lbf"
