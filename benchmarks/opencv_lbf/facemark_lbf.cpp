// Train and run OpenCV contrib's FacemarkLBF on faces listed in a text file, with
// the boxes we give (its Python binding can fit but not train; see build.sh).
//
//   facemark_lbf train   LIST MODEL [INIT_SHAPES]
//   facemark_lbf predict LIST MODEL OUT REPEATS
//
// INIT_SHAPES overrides OpenCV's initShape_n (10 starts per training face), the one
// option that sets training time, which is single-threaded and grows with it.
// LIST has one face per line: image path, box (left top width height, pixels), then
// the 68 points x0 y0 ... x67 y67 (ignored by predict). OUT gets one line per face of
// 136 predicted coordinates, then a line "seconds_per_pass <median over REPEATS>" timing
// FacemarkLBF::fit on every face, one thread, images decoded beforehand.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/face.hpp>
#include <opencv2/imgcodecs.hpp>

struct Face {
    std::string path;
    cv::Rect box;
    std::vector<cv::Point2f> points;
};

static std::vector<Face> read_list(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<Face> faces;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        Face face;
        fields >> face.path >> face.box.x >> face.box.y >> face.box.width >> face.box.height;
        float x, y;
        while (fields >> x >> y) face.points.emplace_back(x, y);
        faces.push_back(face);
    }
    return faces;
}

// Training asks a face detector for each image's box; ours answers with the given one.
static cv::Rect given_box;

static bool answer_given_box(cv::InputArray, cv::OutputArray boxes, void*) {
    cv::Mat(std::vector<cv::Rect>{given_box}).copyTo(boxes);
    return true;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: facemark_lbf train LIST MODEL [INIT_SHAPES] | predict LIST MODEL OUT REPEATS\n";
        return 2;
    }
    const std::string mode = argv[1];
    const std::vector<Face> faces = read_list(argv[2]);
    cv::face::FacemarkLBF::Params params;            // OpenCV's defaults
    params.model_filename = argv[3];
    params.verbose = mode == "train";
    if (mode == "train" && argc > 4) params.initShape_n = std::atoi(argv[4]);
    cv::Ptr<cv::face::FacemarkLBF> facemark = cv::face::FacemarkLBF::create(params);
    if (mode == "train") {
        facemark->setFaceDetector(answer_given_box, nullptr);
        for (const Face& face : faces) {
            given_box = face.box;
            cv::Mat image = cv::imread(face.path);
            std::vector<cv::Point2f> points = face.points;
            facemark->addTrainingSample(image, points);
        }
        facemark->training();
        return 0;
    }
    if (mode != "predict" || argc < 6) {
        std::cerr << "predict needs OUT and REPEATS\n";
        return 2;
    }
    cv::setNumThreads(1);
    facemark->loadModel(argv[3]);
    std::vector<cv::Mat> images;
    for (const Face& face : faces) images.push_back(cv::imread(face.path));
    std::vector<std::vector<cv::Point2f>> predicted(faces.size());
    std::vector<double> seconds;
    for (int pass = 0; pass <= std::atoi(argv[5]); ++pass) {      // pass 0 warms up
        auto start = std::chrono::steady_clock::now();
        for (size_t i = 0; i < faces.size(); ++i) {
            std::vector<cv::Rect> box{faces[i].box};
            std::vector<std::vector<cv::Point2f>> landmarks;
            facemark->fit(images[i], box, landmarks);
            predicted[i] = landmarks.at(0);
        }
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        if (pass > 0) seconds.push_back(took.count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::ofstream out(argv[4]);
    out.precision(9);
    for (const auto& points : predicted) {
        for (const auto& p : points) out << p.x << ' ' << p.y << ' ';
        out << '\n';
    }
    out << "seconds_per_pass " << seconds[seconds.size() / 2] << '\n';
    return 0;
}
